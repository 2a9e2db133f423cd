#!/usr/bin/env python3
"""Mechanical Effect 3 -> Effect 4 renames (the safe ones, per MIGRATION-EFFECT4.md).

Usage: python3 scripts/effect4-codemod.py FILE...   (rewrites in place; review the diff)

What it does NOT do (needs a person): Schema, @effect/cli, Logger layers, Runtime.runFork,
Either values used as Effects (wrap in Effect.fromResult), `.left`/`.right` on values whose
name it cannot see (it only renames `x.left`/`x.right` after `Result.isFailure(x)`/`isSuccess(x)`
on the same line or the lines just below).
"""
import re
import sys

RENAMES = [
    (r"\bit\.scopedLive\b", "it.live"),
    (r"\bit\.scoped\b", "it.effect"),
    (r"\bEffect\.either\(", "Effect.result("),
    (r"\bEffect\.either\b", "Effect.result"),
    (r"\bEffect\.catchAll\(", "Effect.catch("),
    (r"\bEffect\.catchAllDefect\(", "Effect.catchDefect("),
    (r"\bEffect\.zipRight\(", "Effect.andThen("),
    (r"\bEffect\.async\b", "Effect.callback"),
    (r"\bEffect\.fork\(", "Effect.forkChild("),
    (r"\bEffect\.fork\b", "Effect.forkChild"),
    (r"\bEffect\.forkDaemon\b", "Effect.forkDetach"),
    (r"\bEither\.Either<", "Result.Result<"),
    (r"\bEither\.left\(", "Result.fail("),
    (r"\bEither\.right\(", "Result.succeed("),
    (r"\bEither\.isLeft\(", "Result.isFailure("),
    (r"\bEither\.isRight\(", "Result.isSuccess("),
    (r"\bEither\.isLeft\b", "Result.isFailure"),
    (r"\bEither\.isRight\b", "Result.isSuccess"),
    (r"\bEither\.mapLeft\(", "Result.mapError("),
    (r"\bEither\.(map|flatMap|getOrThrow|getOrThrowWith|gen)\b", r"Result.\1"),
    (r"\bExit\.isInterrupted\(", "Exit.hasInterrupts("),
    (r"\bCause\.isInterruptedOnly\(", "Cause.hasInterruptsOnly("),
    (r"\bCause\.failureOption\(", "Cause.findErrorOption("),
    (r"\bDeferred\.unsafeMake<([^>]*)>\(FiberId\.none\)", r"Deferred.makeUnsafe<\1>()"),
    (r"\bDeferred\.unsafeDone\(", "Deferred.doneUnsafe("),
    (r"\bConfig\.string\(", "Config.String("),
    (r"\bConfig\.boolean\(", "Config.Boolean("),
    (r"\bConfig\.integer\(", "Config.Int("),
    (r"\bConfig\.number\(", "Config.Number("),
    (r"\bSchema\.decodeUnknownEither\(", "Schema.decodeUnknownResult("),
    (r"\bSchema\.decodeEither\(", "Schema.decodeResult("),
    (r"\bScope\.extend\(", "Scope.provide("),
    (r"\bLogger\.remove\(Logger\.defaultLogger\)", "Logger.layer([])"),
    (r"\bLogger\.replace\(Logger\.defaultLogger, (\w+)\)", r"Logger.layer([\1])"),
    (r"\bFiber\.RuntimeFiber\b", "Fiber.Fiber"),
    (r"\bLayer\.scoped\(", "Layer.effect("),
    (r"\bEffect\.yieldNow\(\)", "Effect.yieldNow"),
    (r"\bEffect\.withConfigProvider\(", "Effect.provideService(ConfigProvider.ConfigProvider, "),
    (r"\bEffect\.dieMessage\(([^()]*)\)", r"Effect.die(new Error(\1))"),
    (r"\bEffect\.makeSemaphore\(", "Semaphore.make("),
    (r"\bEffect\.repeatN\(([^(),]+(?:\([^()]*\))?), ([^()]+)\)", r"Effect.repeat(\1, { times: \2 })"),
]

CONTEXT_TAG = re.compile(r'Context\.Tag\(("[^"]+")\)<(\w+),\s*')


def port(text: str) -> str:
    for pattern, repl in RENAMES:
        text = re.sub(pattern, repl, text)
    # class X extends Context.Tag("key")<X, Shape>() {  ->  Context.Service<X, Shape>()("key")
    def tag(m: re.Match) -> str:
        key, name = m.group(1), m.group(2)
        return f"Context.Service<{name}, "  + "\0" + key + "\0"
    text = CONTEXT_TAG.sub(tag, text)
    text = re.sub(r'\0("[^"]+")\0([^>]*?)>\(\)', r'\2>()(\1)', text)
    # x.left / x.right where x was just tested with Result.isFailure / isSuccess
    lines = text.split("\n")
    for i, line in enumerate(lines):
        names = set(re.findall(r"Result\.is(?:Failure|Success)\((\w+)\)", "\n".join(lines[max(0, i - 3):i + 1])))
        for n in names:
            line = re.sub(rf"\b{n}\.left\b", f"{n}.failure", line)
            line = re.sub(rf"\b{n}\.right\b", f"{n}.success", line)
        lines[i] = line
    text = "\n".join(lines)
    # FiberId is gone: drop it from the import when nothing else names it
    if not re.search(r"\bFiberId\.", text):
        text = re.sub(r'(import \{[^}]*?)\bFiberId, ([^}]*\} from "effect")', r"\1\2", text)
        text = re.sub(r'(import \{[^}]*?), FiberId\b([^}]*\} from "effect")', r"\1\2", text)
    # TestClock moved to effect/testing
    m = re.search(r'import \{([^}]*)\bTestClock, ?([^}]*)\} from "effect"\n', text) or re.search(r'import \{([^}]*?),? ?TestClock\b([^}]*)\} from "effect"\n', text)
    if m:
        rest = (m.group(1) + m.group(2)).strip().strip(",").strip()
        text = text.replace(m.group(0), f'import {{ {rest} }} from "effect"\nimport {{ TestClock }} from "effect/testing"\n')
    # Semaphore.make needs its module
    if "Semaphore.make(" in text and not re.search(r'import \{[^}]*\bSemaphore\b[^}]*\} from "effect"', text):
        text = re.sub(r'import \{([^}]*)\} from "effect"\n', lambda m: f'import {{{m.group(1).rstrip()}, Semaphore }} from "effect"\n', text, count=1)
    # the import: Either -> Result
    text = re.sub(r'(import \{[^}]*)\bEither\b([^}]*\} from "effect")', lambda m: m.group(1) + "Result" + m.group(2), text)
    return text


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path) as f:
            before = f.read()
        after = port(before)
        if after != before:
            with open(path, "w") as f:
                f.write(after)
            print(f"ported {path}")
