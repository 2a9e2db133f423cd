import { Result, Schema, SchemaIssue, SchemaAST } from "effect"
const fmt = SchemaIssue.makeFormatterStandardSchemaV1()
const show = (s: any, u: unknown) => {
  const r = Schema.decodeUnknownResult(s)(u, { errors: "all", reportInput: true } as any)
  if (Result.isSuccess(r)) return console.log("OK", JSON.stringify(r.success))
  console.log(JSON.stringify(fmt(r.failure.issue).issues), "|", r.failure.issue._tag)
}
const P = Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0)).annotate({ message: "must be a positive integer" })
show(P, "abc"); show(P, -1.5); show(P, 3)
const P2 = Schema.Number.annotate({ message: "TYPE" }).check(Schema.isInt({ message: "INT" }), Schema.isGreaterThan(0, { message: "POS" }))
show(P2, "abc"); show(P2, -1.5)
const S = Schema.Struct({ a: Schema.optional(Schema.Number), b: Schema.String, c: Schema.NullOr(Schema.Record(Schema.String, Schema.Unknown)) }).annotate({ identifier: "an object with a" })
show(S, "x"); show(S, { c: [1] }); show(S, { b: "x", c: { k: 1 }, z: 1 }); show(S, { b: "x", c: null, a: undefined })
show(Schema.Number, NaN); show(Schema.Number, Infinity)
show(Schema.Record(Schema.String, Schema.Unknown), [1])
show(Schema.Tuple([Schema.Number, Schema.Number]), [1])
show(Schema.Literals(["a", "b"]).annotate({ message: "LIT" }), "c")
