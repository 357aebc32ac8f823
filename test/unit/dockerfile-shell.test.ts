// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfiles use ${…} too
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { escapeDirective, expandWord, syntaxDirective, unquoteFlagValue } from '../../src/core/dockerfile';

const env = new Map([
  ['V', 'value'],
  ['EMPTY', ''],
  ['PATHY', 'docker.io/library/alpine:3.20'],
  ['TAG', 'v1.2.3-rc'],
]);

function expand(word: string, escapeToken = '\\'): string {
  const e = expandWord(word, env, escapeToken);
  assert.equal(e.error, undefined, `unexpected error for ${word}: ${e.error}`);
  return e.result;
}

describe('expandWord', () => {
  test('blank: the variables put in as they are while unset or empty, not those given a fallback', () => {
    const e = expandWord('$UNSET${EMPTY-x}${V}${NONE:-x}${GONE-y}${NIL#a}${VOID/a/b}${NO+z}${EMPTY:+w}', env);
    assert.deepEqual([...e.blank].sort(), ['EMPTY', 'NIL', 'UNSET', 'VOID']);
    assert.deepEqual(expandWord('${EMPTY?}${V:?}', env).blank, ['EMPTY']);
  });

  const cases: [string, string][] = [
    ['$V', 'value'],
    ['${V}', 'value'],
    ['a$V-b', 'avalue-b'],
    ['$UNSET', ''],
    ['${UNSET}x', 'x'],
    ['${V:-d}', 'value'],
    ['${EMPTY:-d}', 'd'],
    ['${UNSET:-d}', 'd'],
    ['${V-d}', 'value'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${V:+alt}', 'alt'],
    ['${EMPTY:+alt}', ''],
    ['${UNSET:+alt}', ''],
    ['${V+alt}', 'alt'],
    ['${EMPTY+alt}', 'alt'],
    ['${UNSET+alt}', ''],
    ['${UNSET:-${V}}', 'value'],
    ['${UNSET:-"a b"}', 'a b'],
    ['${PATHY#*/}', 'library/alpine:3.20'],
    ['${PATHY##*/}', 'alpine:3.20'],
    ['${TAG%-*}', 'v1.2.3'],
    ['${TAG%%.*}', 'v1'],
    ['${TAG/./_}', 'v1_2.3-rc'],
    ['${TAG//./_}', 'v1_2_3-rc'],
    ['"$V"', 'value'],
    ["'$V'", '$V'],
    ['\\$V', '$V'],
    ['"\\$V"', '$V'],
    ['"a\\b"', 'a\\b'],
    ['a\\ b', 'a b'],
    ['$', '$'],
    ['x$', 'x$'],
    ['$1', ''],
  ];
  for (const [word, expected] of cases) {
    test(`${word} → ${JSON.stringify(expected)}`, () => assert.equal(expand(word), expected));
  }

  test('the escape token can be a backtick', () => {
    assert.equal(expand('`$V', '`'), '$V');
    assert.equal(expand('c:\\x', '`'), 'c:\\x');
  });

  test('reports which variables were unset and which were used', () => {
    const e = expandWord('${A}:${V}-${B:-x}', env);
    assert.deepEqual([...e.unset].sort(), ['A', 'B']);
    assert.deepEqual(e.used, ['V']);
  });

  const errors: [string, RegExp][] = [
    ['${V', /missing '}'/],
    ['${}', /bad substitution/],
    ['${:x}', /bad substitution/],
    ['${V:x}', /unsupported modifier \(:x\)/],
    ['${UNSET:?must be set}', /UNSET: must be set/],
    ['${UNSET?}', /UNSET: is not allowed to be unset/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be empty/],
    ['"abc', /double-quote/],
    ["'abc", /single-quote/],
    ['${V#\\x}', /invalid escape/],
  ];
  for (const [word, message] of errors) {
    test(`${word} is a syntax error`, () => {
      const e = expandWord(word, env);
      assert.match(e.error ?? '', message);
      assert.equal(e.result, '');
    });
  }
});

describe('unquoteFlagValue', () => {
  test('removes quotes and escapes like BuildKit flag parsing', () => {
    assert.equal(unquoteFlagValue('"linux/arm64"'), 'linux/arm64');
    assert.equal(unquoteFlagValue("'$X'"), '$X');
    assert.equal(unquoteFlagValue('a\\,b'), 'a,b');
    assert.equal(unquoteFlagValue('type=bind,from="img:1"'), 'type=bind,from=img:1');
    assert.equal(unquoteFlagValue('a`b', '`'), 'ab');
  });
});

describe('parser directives', () => {
  test('# syntax= at the top, with the image as the first word', () => {
    const d = syntaxDirective(['# syntax = docker/dockerfile:1.7 extra', 'FROM a']);
    assert.deepEqual(d, { name: 'syntax', value: 'docker/dockerfile:1.7', line: 0, start: 11, end: 32 });
  });
  test('a #! first line is skipped; a blank line or another comment ends the directives', () => {
    assert.equal(syntaxDirective(['#!/usr/bin/env buildctl', '#syntax=x/y'])?.line, 1);
    assert.equal(syntaxDirective(['', '# syntax=x/y']), undefined);
    assert.equal(syntaxDirective(['# hello', '# syntax=x/y']), undefined);
    assert.equal(syntaxDirective(['# foo=bar', '# syntax=x/y']), undefined);
    assert.equal(syntaxDirective(['# check=skip=all', '# SYNTAX=x/y'])?.value, 'x/y');
    assert.equal(syntaxDirective(['  # syntax=x/y']), undefined);
  });
  test('# escape= takes ` or \\ only, and leading space is allowed', () => {
    assert.equal(escapeDirective(['# escape=`'])?.value, '`');
    assert.equal(escapeDirective(['  # ESCAPE = `'])?.value, '`');
    assert.equal(escapeDirective(['# escape=x']), undefined);
    assert.equal(escapeDirective(['# syntax=a/b', '# escape=`'])?.value, '`');
    assert.equal(escapeDirective(['# foo=bar', '# escape=`']), undefined);
    assert.equal(escapeDirective(['# escape=`', '# escape=\\'])?.value, '`');
  });
});
