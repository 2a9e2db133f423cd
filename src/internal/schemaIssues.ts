/**
 * Schema issues as `path: reason` lines, the way Effect 3's `ArrayFormatter` listed them: one
 * line per failing leaf, with its path. Effect 4's own formatters take only string messages
 * (no function of the issue) and say "got" after a default message; the runtime's messages
 * name the offending value in their own words, so each caller passes `reason`, which may
 * answer for a whole subtree (Effect 3's `override: true`), and the walk stops there.
 */
import { SchemaIssue } from "effect"

export interface IssueLine {
  readonly path: ReadonlyArray<PropertyKey>
  /** The issue the line is about (`MissingKey`, `InvalidType`, `Filter`, ...). */
  readonly issue: SchemaIssue.Issue
  readonly message: string
}

/** The value an issue reports (decode with `reportInput: true`), or undefined. */
export const inputOf = (issue: SchemaIssue.Issue): unknown => (SchemaIssue.hasInput(issue) ? issue.input : undefined)

/**
 * Flattens an issue tree. `reason(issue)` returns the message for that node (and stops the walk
 * below it), or undefined to descend / use Effect's default message for a leaf.
 */
export const flattenIssue = (
  root: SchemaIssue.Issue,
  reason: (issue: SchemaIssue.Issue) => string | undefined
): ReadonlyArray<IssueLine> => {
  const out: Array<IssueLine> = []
  const walk = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): void => {
    const own = reason(issue)
    if (own !== undefined) {
      out.push({ path, issue, message: own })
      return
    }
    switch (issue._tag) {
      case "Pointer":
        return walk(issue.issue, [...path, ...issue.path])
      case "Encoding":
        return walk(issue.issue, path)
      case "Filter":
        // A failed check's own verdict (InvalidValue) is formatted with the check's annotations below;
        // a check that answered with a path (`{ path, issue }`) or several issues is walked into.
        if (issue.issue._tag !== "InvalidValue") return walk(issue.issue, path)
        break
      case "Composite":
        for (const inner of issue.issues) walk(inner, path)
        return
      case "AnyOf":
        if (issue.issues.length > 0) {
          for (const inner of issue.issues) walk(inner, path)
          return
        }
        break
    }
    const [line] = SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues
    out.push({ path, issue, message: line?.message ?? "is invalid" })
  }
  walk(root, [])
  return out
}
