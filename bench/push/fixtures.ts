/** What the push benchmark puts in the hub: one schema, device ids, the group every bench device is in. */

export const PUSH_SCHEMA_NAME = 'bench-push';
export const BENCH_LABEL = 'bench';
export const BENCH_GROUP = 'bench';
export const WARM_LABEL = 'warm';
export const WARM_GROUP = 'warm';

/** The default label text pads the snapshot to about 200 bytes, the size of DESIGN.md's Mosquitto anchor message. */
export const PUSH_SCHEMA = {
  type: 'object',
  description: 'push benchmark device: a counter (figure a), an interval (the group change of figure b), a padding label',
  properties: {
    counter: { type: 'integer', minimum: 0, default: 0 },
    interval: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 60 },
    mode: { enum: ['off', 'eco', 'on'], default: 'eco' },
    label: { type: 'string', maxLength: 200, default: 'b'.repeat(125) },
  },
  required: ['mode'],
  additionalProperties: false,
};

export const benchId = (i: number): string => `push-${String(i).padStart(5, '0')}`;
export const warmId = (i: number): string => `warm-${String(i).padStart(4, '0')}`;

/** The MQTT baseline's message size (DESIGN.md: one retained 200-byte message to N subscribers). */
export const MQTT_PAYLOAD_BYTES = 200;
export const MQTT_TOPIC = 'henge/bench/fanout';
