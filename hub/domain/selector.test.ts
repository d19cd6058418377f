import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, InvalidSelectorError } from '../errors.ts';
import { SelectorOp, matches, parseSelector } from './selector.ts';
import type { Requirement } from './selector.ts';

function only(text: string): Requirement {
  const s = parseSelector(text);
  assert.equal(s.requirements.length, 1, `${text} has one requirement`);
  const r = s.requirements[0];
  assert.ok(r);
  return r;
}

function invalid(text: string): void {
  assert.throws(
    () => parseSelector(text),
    (e: unknown) => {
      assert.ok(e instanceof InvalidSelectorError, `${JSON.stringify(text)}: expected InvalidSelectorError, got ${String(e)}`);
      assert.equal(e.code, ErrorCode.InvalidSelector);
      assert.equal(e.code, 'HENGE_E_INVALID_SELECTOR');
      assert.equal(e.status, 400);
      assert.match(e.message, /^invalid selector /);
      const v = e.details.violations?.[0];
      assert.ok(v, 'a violation is attached');
      assert.equal(v.field, 'selector');
      assert.equal(v.rule, 'syntax');
      return true;
    },
    `${JSON.stringify(text)} should be refused`,
  );
}

// --- parsing --------------------------------------------------------------------------------

test('selector - `k=v` parses to an equality requirement', () => {
  assert.deepEqual(only('site=lab'), { key: 'site', op: SelectorOp.Eq, values: ['lab'] });
  assert.deepEqual(only('  site = lab  '), { key: 'site', op: SelectorOp.Eq, values: ['lab'] });
});

test('selector - `k==v` is the same requirement as `k=v`', () => {
  assert.deepEqual(only('site==lab'), { key: 'site', op: SelectorOp.Eq, values: ['lab'] });
  assert.equal(parseSelector('site==lab').text, 'site=lab');
});

test('selector - `k!=v` parses to an inequality requirement', () => {
  assert.deepEqual(only('site!=lab'), { key: 'site', op: SelectorOp.NotEq, values: ['lab'] });
  assert.equal(parseSelector('site != lab').text, 'site!=lab');
});

test('selector - `k` parses to an existence requirement', () => {
  assert.deepEqual(only('canary'), { key: 'canary', op: SelectorOp.Exists, values: [] });
});

test('selector - `!k` parses to a non-existence requirement', () => {
  assert.deepEqual(only('!canary'), { key: 'canary', op: SelectorOp.NotExists, values: [] });
  assert.deepEqual(only('! canary'), { key: 'canary', op: SelectorOp.NotExists, values: [] });
});

test('selector - `k in (a|b)` parses to a set requirement with sorted, de-duplicated values', () => {
  assert.deepEqual(only('hw in (pico|esp32)'), { key: 'hw', op: SelectorOp.In, values: ['esp32', 'pico'] });
  assert.deepEqual(only('hw in ( pico | esp32 | pico )'), { key: 'hw', op: SelectorOp.In, values: ['esp32', 'pico'] });
  // A one-value set means equality, and is spelled as such.
  assert.deepEqual(only('hw in (pico)'), { key: 'hw', op: SelectorOp.Eq, values: ['pico'] });
  assert.deepEqual(only('hw in(pico)'), { key: 'hw', op: SelectorOp.Eq, values: ['pico'] });
});

test('selector - one spelling per meaning: `k in (v)` is `k=v`, `k notin (v)` is `k!=v`', () => {
  assert.equal(parseSelector('hw in (pico)').text, parseSelector('hw=pico').text);
  assert.equal(parseSelector('hw notin (pico)').text, parseSelector('hw!=pico').text);
});

test('selector - `k in (a,b)` accepts commas inside the parentheses', () => {
  const s = parseSelector('hw in (pico,esp32),site=lab');
  assert.equal(s.requirements.length, 2);
  assert.equal(s.text, 'hw in (esp32|pico),site=lab');
});

test('selector - `k notin (a|b)` parses to a negated set requirement', () => {
  assert.deepEqual(only('hw notin (pico|esp32)'), { key: 'hw', op: SelectorOp.NotIn, values: ['esp32', 'pico'] });
});

test('selector - `*` and the empty string select everything', () => {
  for (const text of ['*', '', '   ', ' * ']) {
    const s = parseSelector(text);
    assert.equal(s.text, '*', JSON.stringify(text));
    assert.deepEqual(s.requirements, []);
    assert.equal(matches(s, {}), true);
    assert.equal(matches(s, { a: 'b' }), true);
  }
});

test('selector - label keys may hold dots, underscores, slashes and dashes', () => {
  assert.deepEqual(only('site.floor=2'), { key: 'site.floor', op: SelectorOp.Eq, values: ['2'] });
  assert.deepEqual(only('hw/rev in (a|b)'), { key: 'hw/rev', op: SelectorOp.In, values: ['a', 'b'] });
  assert.deepEqual(only('x_y-z'), { key: 'x_y-z', op: SelectorOp.Exists, values: [] });
});

test('selector - `k=` is an equality with the empty value', () => {
  assert.deepEqual(only('site='), { key: 'site', op: SelectorOp.Eq, values: [''] });
  assert.equal(matches(parseSelector('site='), { site: '' }), true);
  assert.equal(matches(parseSelector('site='), {}), false);
});

// --- canonical text -------------------------------------------------------------------------

test('selector - canonical text does not depend on the order of requirements', () => {
  const forms = ['site=lab,hw in (pico|esp32),!canary', '!canary,site=lab,hw in (esp32|pico)', 'hw in (esp32|pico), !canary ,site==lab'];
  const texts = new Set(forms.map((f) => parseSelector(f).text));
  assert.equal(texts.size, 1, [...texts].join(' / '));
  assert.equal([...texts][0], '!canary,hw in (esp32|pico),site=lab');
});

test('selector - canonical text drops duplicate requirements', () => {
  assert.equal(parseSelector('a=1,a=1').text, 'a=1');
  assert.equal(parseSelector('a=1,a==1, a = 1').text, 'a=1');
  assert.equal(parseSelector('a in (x|y),a in (y|x|y)').text, 'a in (x|y)');
  assert.equal(parseSelector('b,a,b,!c,!c').text, '!c,a,b');
});

test('selector - canonical text parses back to itself', () => {
  for (const text of ['a=1', 'b!=2', 'c', '!d', 'e in (x|y)', 'f notin (z)', 'hw/rev=b,site.floor!=3,!x,y in (p|q)']) {
    const once = parseSelector(text).text;
    assert.equal(parseSelector(once).text, once, text);
  }
});

test('selector - property: shuffled and duplicated requirements give the same canonical text', () => {
  let seed = 0x5e1ec7;
  const rnd = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)] as T;
  const keys = ['a', 'b', 'a.b', 'a-b', 'a_b', 'a/b', 'ab', 'b0', '0a', 'site', 'site.floor'];
  const vals = ['x', 'X', 'y', '1', '10', '2', 'a.b', 'a-b', 'a_b', 'Z9'];
  const term = (): string => {
    const k = pick(keys);
    switch (Math.floor(rnd() * 7)) {
      case 0:
        return `${k}=${pick(vals)}`;
      case 1:
        return `${k}==${pick(vals)}`;
      case 2:
        return `${k}!=${pick(vals)}`;
      case 3:
        return k;
      case 4:
        return `!${k}`;
      case 5:
        return `${k} in (${pick(vals)}|${pick(vals)})`;
      default:
        return `${k} notin (${pick(vals)}|${pick(vals)})`;
    }
  };
  for (let i = 0; i < 300; i++) {
    const terms = Array.from({ length: 1 + Math.floor(rnd() * 6) }, term);
    const text = parseSelector(terms.join(',')).text;
    const shuffled = [...terms, ...terms.filter(() => rnd() < 0.3)];
    for (let j = shuffled.length - 1; j > 0; j--) {
      const k = Math.floor(rnd() * (j + 1));
      [shuffled[j], shuffled[k]] = [shuffled[k] as string, shuffled[j] as string];
    }
    assert.equal(parseSelector(shuffled.join(' , ')).text, text, `${terms.join(',')} vs ${shuffled.join(',')}`);
    assert.equal(parseSelector(text).text, text);
  }
});

// --- matching -------------------------------------------------------------------------------

function truthTable(text: string, rows: ReadonlyArray<readonly [Readonly<Record<string, string>>, boolean]>): void {
  const s = parseSelector(text);
  for (const [labels, expected] of rows) {
    assert.equal(matches(s, labels), expected, `${text} against ${JSON.stringify(labels)}`);
  }
}

test('selector - `k=v` matches only when the label has that value', () => {
  truthTable('site=lab', [
    [{ site: 'lab' }, true],
    [{ site: 'lab', hw: 'pico' }, true],
    [{ site: 'fab' }, false],
    [{ site: 'Lab' }, false],
    [{ site: '' }, false],
    [{}, false],
    [{ other: 'lab' }, false],
  ]);
});

test('selector - `k!=v` matches other values and a missing label', () => {
  truthTable('site!=lab', [
    [{ site: 'lab' }, false],
    [{ site: 'fab' }, true],
    [{ site: '' }, true],
    [{}, true],
  ]);
});

test('selector - `k` matches when the label is present, even empty', () => {
  truthTable('canary', [
    [{ canary: 'yes' }, true],
    [{ canary: '' }, true],
    [{}, false],
    [{ canaryx: 'yes' }, false],
  ]);
});

test('selector - `!k` matches when the label is absent', () => {
  truthTable('!canary', [
    [{ canary: 'yes' }, false],
    [{ canary: '' }, false],
    [{}, true],
    [{ other: 'x' }, true],
  ]);
});

test('selector - `in` matches any listed value', () => {
  truthTable('hw in (pico|esp32)', [
    [{ hw: 'pico' }, true],
    [{ hw: 'esp32' }, true],
    [{ hw: 'rpi' }, false],
    [{ hw: '' }, false],
    [{}, false],
  ]);
});

test('selector - `notin` matches unlisted values and a missing label', () => {
  truthTable('hw notin (pico|esp32)', [
    [{ hw: 'pico' }, false],
    [{ hw: 'esp32' }, false],
    [{ hw: 'rpi' }, true],
    [{}, true],
  ]);
});

test('selector - all requirements must hold', () => {
  truthTable('site=lab,hw in (pico|esp32),!canary', [
    [{ site: 'lab', hw: 'pico' }, true],
    [{ site: 'lab', hw: 'esp32', floor: '2' }, true],
    [{ site: 'lab', hw: 'pico', canary: '' }, false],
    [{ site: 'fab', hw: 'pico' }, false],
    [{ site: 'lab' }, false],
    [{}, false],
  ]);
});

test('selector - contradictory requirements match nothing', () => {
  truthTable('a,!a', [
    [{ a: '1' }, false],
    [{}, false],
  ]);
  truthTable('a=1,a=2', [
    [{ a: '1' }, false],
    [{ a: '2' }, false],
  ]);
});

test('selector - inherited object properties are not labels', () => {
  truthTable('constructor', [[{}, false]]);
  truthTable('!constructor', [[{}, true]]);
  truthTable('constructor!=x', [[{}, true]]);
});

// --- invalid --------------------------------------------------------------------------------

test('selector - invalid selectors throw InvalidSelectorError with code HENGE_E_INVALID_SELECTOR', () => {
  const bad = [
    '=v', // no key
    '!=v', // no key
    '!', // no key
    'a,,b', // empty term
    'a,', // trailing comma
    ',a',
    'Site=lab', // upper-case key
    '-a=1', // key starts with a dash
    'a=b c', // space in value
    'a=b=c', // '=' in value
    'a===b',
    'a!==b',
    'a=hello!', // bad value character
    'a in ()', // empty list
    'a in (|)',
    'a in (x|y', // unbalanced
    'a in x|y)',
    'a in (x y)',
    'a notin (b=c)',
    'in (a)',
    '*,a=1', // '*' only on its own
    'a b',
    `k=${'v'.repeat(64)}`, // value longer than 63
    `${'k'.repeat(64)}`, // key longer than 63
  ];
  for (const text of bad) invalid(text);
});

test('selector - a selector longer than 1024 characters is refused', () => {
  const terms = Array.from({ length: 200 }, (_, i) => `k${i}=v`);
  const text = terms.join(',');
  assert.ok(text.length > 1024);
  invalid(text);
  const short = terms.slice(0, 100).join(',');
  assert.ok(short.length <= 1024);
  assert.equal(parseSelector(short).requirements.length, 100);
});

test('selector - the error message quotes the selector as given', () => {
  assert.throws(() => parseSelector('a,,b'), /invalid selector "a,,b"/);
  assert.throws(() => parseSelector('A=1'), /label key "A" must match/);
  assert.throws(() => parseSelector('a=b c'), /label value "b c" must match/);
});
