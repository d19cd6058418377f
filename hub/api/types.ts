/** Request and response shapes shared by the routes (TypeBox, so each is also JSON Schema for OpenAPI). */
import { Type } from 'typebox';

export const ConfigValueT = Type.Union([Type.String({ maxLength: 4096 }), Type.Number(), Type.Boolean()], {
  description: 'A config value: string, number or boolean',
});
export const NullableConfigValueT = Type.Union([ConfigValueT, Type.Null()], { description: 'A value to set, or null to unset the key' });

export const ValuesT = Type.Record(Type.String({ maxLength: 64 }), ConfigValueT, { maxProperties: 256 });
export const PatchValuesT = Type.Record(Type.String({ maxLength: 64 }), NullableConfigValueT, { maxProperties: 256 });
export const LabelsT = Type.Record(Type.String({ maxLength: 63 }), Type.String({ maxLength: 63 }), { maxProperties: 64 });
export const PatchLabelsT = Type.Record(Type.String({ maxLength: 63 }), Type.Union([Type.String({ maxLength: 63 }), Type.Null()]), {
  maxProperties: 64,
});

export const IdParamT = Type.Object({ id: Type.String({ maxLength: 128 }) }, { additionalProperties: false });
export const NameParamT = Type.Object({ name: Type.String({ maxLength: 128 }) }, { additionalProperties: false });

export const ErrorT = Type.Object(
  {
    code: Type.String({ description: 'Stable error code, HENGE_E_*' }),
    message: Type.String(),
    details: Type.Object({}, { additionalProperties: true }),
  },
  { $id: 'HengeError', description: 'Every error the API returns' },
);

export const ValuesBodyT = Type.Object({ values: ValuesT }, { additionalProperties: false });
export const PatchBodyT = Type.Object({ values: PatchValuesT }, { additionalProperties: false });
