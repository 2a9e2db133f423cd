/**
 * model.yaml (CONTRACT §6) and the runtime's extension sections (`preprocessing`,
 * `backend`, `postprocess`, `limits`, `scheduling`): the schema (`ModelYaml`), and the pure
 * steps from text to a decoded value (`parseModelYaml`, `decodeModelConfig`, unknown keys),
 * every problem named by its dotted key. Files are read by ModelLoader.ts.
 *
 * The decoded value keeps the YAML's snake_case keys so every problem path
 * (`resource_requirements.cpu_fallback_allowed`) is exactly what the author wrote.
 */
import { Data, Effect, Result, Schema, SchemaAST, SchemaGetter, type SchemaIssue } from "effect"
import * as YAML from "yaml"
import { flattenIssue, inputOf } from "../internal/schemaIssues.js"
import { MODEL_ID_PATTERN, PER_CAMERA, showValue } from "./RuntimeSettings.js"

// ---------------------------------------------------------------------------
// Leaf schemas: every one carries a `must` annotation so a problem reads
// "must be <what>, got <value>" whatever part of the check failed (its type, a check,
// an element of a list): the annotated node answers for everything below it.
// ---------------------------------------------------------------------------

/** The annotation `schemaProblems` reads: the node's rule, stated once for the whole subtree. */
const MUST = "ruth/must"
const must = (what: string) => ({ [MUST]: what })

/**
 * `base` with `checks`, each stopping the ones after it, all stating one rule. The rule sits on
 * the base node and on every check because Effect 4 reports a failed check by the check alone.
 */
const leaf = <S extends Schema.Top>(
  base: S,
  what: string,
  ...checks: ReadonlyArray<SchemaAST.Filter<S["Type"]>>
): S["Rebuild"] => {
  const annotated = base.annotate(must(what)) as S["Rebuild"]
  const [first, ...rest] = checks.map((c) => c.annotate(must(what)).abort())
  return first === undefined ? annotated : annotated.check(first, ...rest)
}

const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literals(values).annotate(must(`one of ${values.join(", ")}`))

const nonBlank = () => Schema.makeFilter((s: string) => s.trim().length > 0)
const NonEmptyString = leaf(Schema.String, "a non-empty string", nonBlank())
const Text = leaf(Schema.String, "a string")
const Bool = leaf(Schema.Boolean, "true or false")
const PositiveInt = leaf(Schema.Number, "a positive integer", Schema.isInt(), Schema.isGreaterThan(0))
const NonNegativeInt = leaf(Schema.Number, "a non-negative integer", Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))
const NiceValue = leaf(Schema.Number, "an integer from 0 to 19", Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 19 }))
const Unit = leaf(Schema.Number, "between 0 and 1", Schema.isBetween({ minimum: 0, maximum: 1 }))
const PositiveNumber = leaf(Schema.Number, "a number > 0", Schema.isFinite(), Schema.isGreaterThan(0))
const NonNegativeNumber = leaf(Schema.Number, "a number >= 0", Schema.isFinite(), Schema.isGreaterThanOrEqualTo(0))
const StringList = Schema.Array(Schema.String).annotate(must("a list of strings"))
const NonEmptyStringList = Schema.Array(Schema.String.check(nonBlank())).annotate(must("a list of non-empty strings"))
const positiveInt = () => Schema.Number.check(Schema.isInt().abort(), Schema.isGreaterThan(0))
const finite = () => Schema.Number.check(Schema.isFinite())
const Size = Schema.Tuple([positiveInt(), positiveInt()]).annotate(must("[width, height] with positive integers"))
const Triple = Schema.Tuple([finite(), finite(), finite()]).annotate(must("a list of 3 numbers"))
const positive = () => Schema.Number.check(Schema.isFinite().abort(), Schema.isGreaterThan(0))
const PositiveTriple = Schema.Tuple([positive(), positive(), positive()]).annotate(must("a list of 3 numbers > 0"))
const PadValue = leaf(Schema.Number, "an integer from 0 to 255", Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 255 }))

/** Model ids become socket and heartbeat file names (same alphabet as RuntimeConfig). */
const ModelId = leaf(
  Schema.String,
  "a non-empty id of letters, digits, '.', '_' or '-' (it becomes part of socket and heartbeat file names)",
  Schema.isPattern(MODEL_ID_PATTERN)
)

/** @internal A YAML mapping before decoding. */
export type Raw = Record<string, unknown>

/** @internal */
export const isRecord = (u: unknown): u is Raw => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * A section (`backend: {...}`). A value that is not a mapping is reported as
 * `must be a mapping of keys, got ...` by `schemaProblems` (any struct's type failure), so a
 * section is its struct: Effect 4 needs no Unknown-to-struct transformation for the message.
 */
const section = <S extends Schema.Top>(schema: S): S => schema

// A key that may be absent (never `undefined`: YAML's empty values, null, are dropped before decoding).
const optionalKey = <S extends Schema.Top>(schema: S) => Schema.optionalKey(schema)

/** A key whose absence decodes `value`, given in the schema's encoded form (a section's default is `{}`). */
const withDefault = <S extends Schema.Top>(schema: S, value: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

// ---------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------

const resourceRequirementsFields = {
  gpu_required: withDefault(Bool, false),
  gpu_memory_mb: optionalKey(PositiveInt),
  cpu_fallback_allowed: optionalKey(Bool)
}

const CONTRADICTION =
  "contradicts gpu_required: true — a model that requires a GPU must refuse to run without one, so it cannot also allow falling back to CPU; set cpu_fallback_allowed: false (or gpu_required: false if CPU is acceptable)"

/**
 * `cpu_fallback_allowed` defaults to true, except when `gpu_required: true`
 * (where true would be the contradiction): then an omitted value means false.
 */
export const ResourceRequirements = section(Schema.Struct(resourceRequirementsFields)).check(
  Schema.makeFilter((r) =>
    r.gpu_required && r.cpu_fallback_allowed === true
      ? { path: ["cpu_fallback_allowed"], issue: CONTRADICTION }
      : undefined
  )
).pipe(
  Schema.decodeTo(
    Schema.Struct({
      gpu_required: Schema.Boolean,
      gpu_memory_mb: Schema.optionalKey(Schema.Number),
      cpu_fallback_allowed: Schema.Boolean
    }),
    {
      decode: SchemaGetter.transform((r) => ({ ...r, cpu_fallback_allowed: r.cpu_fallback_allowed ?? !r.gpu_required })),
      encode: SchemaGetter.transform((r) => r)
    }
  )
)

const outputSchemaFields = {
  type: optionalKey(Text),
  format: optionalKey(Text),
  classes: optionalKey(PositiveInt),
  class_names: optionalKey(StringList),
  class_names_file: optionalKey(NonEmptyString)
}

export const OutputSchema = section(Schema.Struct(outputSchemaFields)).check(
  Schema.makeFilter((o) =>
    o.class_names !== undefined && o.class_names_file !== undefined
      ? { path: ["class_names_file"], issue: "give either class_names or class_names_file, not both" }
      : undefined
  )
)

const preprocessingFields = {
  input_size: optionalKey(Size),
  resize: withDefault(oneOf("letterbox", "stretch"), "letterbox"),
  pad_value: withDefault(PadValue, 114),
  color_matrix: withDefault(oneOf("bt601", "bt709"), "bt601"),
  color_range: withDefault(oneOf("full", "limited"), "full"),
  channel_order: withDefault(oneOf("rgb", "bgr"), "rgb"),
  scale: withDefault(PositiveNumber, 1 / 255),
  mean: withDefault(Triple, [0, 0, 0]),
  std: withDefault(PositiveTriple, [1, 1, 1]),
  layout: withDefault(oneOf("nchw", "nhwc"), "nchw"),
  dtype: withDefault(oneOf("float32", "uint8"), "float32")
}

export const Preprocessing = section(Schema.Struct(preprocessingFields))

const backendFields = {
  execution_providers: withDefault(
    Schema.NonEmptyArray(Schema.Literals(["cpu", "cuda"])).annotate(must("a non-empty list of: cpu, cuda")),
    ["cpu"]
  ),
  intra_op_threads: withDefault(NonNegativeInt, 0),
  inter_op_threads: withDefault(NonNegativeInt, 0),
  // The nice value of onnxruntime's own pool threads (Linux, CPU sessions); 0 leaves them as they are.
  pool_thread_nice: withDefault(NiceValue, 10),
  warmup_runs: withDefault(NonNegativeInt, 1),
  input_name: optionalKey(NonEmptyString),
  output_names: optionalKey(NonEmptyStringList)
}

export const Backend = section(Schema.Struct(backendFields))

const yoloFields = {
  kind: Schema.Literal("yolo"),
  layout: withDefault(oneOf("auto", "v8", "v5"), "auto"),
  max_detections: withDefault(PositiveInt, 100),
  class_agnostic_nms: withDefault(Bool, false)
}

const dbTextFields = {
  kind: Schema.Literal("db_text"),
  threshold: withDefault(Unit, 0.3),
  box_threshold: withDefault(Unit, 0.6),
  unclip_ratio: withDefault(PositiveNumber, 1.5),
  min_area: withDefault(NonNegativeNumber, 16),
  max_detections: withDefault(PositiveInt, 1000)
}

const noneFields = { kind: Schema.Literal("none") }

const POSTPROCESS_KINDS = ["yolo", "db_text", "none"] as const

/** Which options each post-processor reads; any other key under `postprocess` is an error. */
const postprocessKeys: Record<(typeof POSTPROCESS_KINDS)[number], ReadonlyArray<string>> = {
  yolo: Object.keys(yoloFields),
  db_text: Object.keys(dbTextFields),
  none: Object.keys(noneFields)
}

const PostprocessUnion = Schema.Union([Schema.Struct(yoloFields), Schema.Struct(dbTextFields), Schema.Struct(noneFields)])

/** `kind` decides which options apply; an omitted kind means `none`. */
export const Postprocess = Schema.Unknown.check(
  Schema.makeFilter((u) => {
    if (!isRecord(u)) return `must be a mapping of keys, got ${showValue(u)}`
    const kind = u["kind"]
    return kind === undefined || (typeof kind === "string" && (POSTPROCESS_KINDS as ReadonlyArray<string>).includes(kind))
      ? undefined
      : { path: ["kind"], issue: `must be one of ${POSTPROCESS_KINDS.join(", ")}, got ${showValue(kind)}` }
  }).abort()
).pipe(
  Schema.decodeTo(PostprocessUnion, {
    // Checked above: a mapping whose kind, when given, is one of POSTPROCESS_KINDS; the union checks the rest.
    decode: SchemaGetter.transform((u) =>
      (isRecord(u) && u["kind"] === undefined ? { ...u, kind: "none" } : u) as typeof PostprocessUnion.Encoded
    ),
    encode: SchemaGetter.transform((p): unknown => p)
  })
)

const limitsFields = {
  max_inflight: optionalKey(PositiveInt),
  request_timeout_ms: optionalKey(PositiveInt)
}

export const Limits = section(Schema.Struct(limitsFields))

/** Who gets the model under overload (the Scheduler); absent keys keep the runtime's defaults. */
const schedulingFields = {
  /** Freshness budget in ms; 0 = off. */
  max_frame_age_ms: optionalKey(NonNegativeInt),
  per_camera: optionalKey(oneOf(...PER_CAMERA)),
  /** Model runs at once (the ONNX backend: sessions, threads shared out among them). */
  streams: optionalKey(PositiveInt),
  /** Frames run as one batch, at most (needs a model with a dynamic batch dimension). */
  max_batch: optionalKey(PositiveInt),
  /** How long a batch may wait for more frames, ms; 0 = only what already waits. */
  max_queue_delay_ms: optionalKey(NonNegativeInt)
}

export const Scheduling = section(Schema.Struct(schedulingFields))

// ---------------------------------------------------------------------------
// model.yaml
// ---------------------------------------------------------------------------

const modelConfigFields = {
  model_id: ModelId,
  model_name: NonEmptyString,
  model_version: NonEmptyString,
  description: optionalKey(Text),
  author: optionalKey(Text),
  license: optionalKey(Text),
  supported_tasks: withDefault(StringList, []),
  input_format: withDefault(oneOf("NV12", "RGB24", "BGR24"), "NV12"),
  expected_resolution: withDefault(Size, [640, 640]),
  // A section's default is the section decoded from `{}`.
  resource_requirements: withDefault(ResourceRequirements, {}),
  // "pytorch" is accepted here so the loader can say why it cannot run, instead of "unknown value".
  model_type: withDefault(oneOf("onnx", "pytorch"), "onnx"),
  model_weights: NonEmptyString,
  confidence_threshold: withDefault(Unit, 0.5),
  nms_iou_threshold: optionalKey(Unit),
  output_schema: withDefault(OutputSchema, {}),
  preprocessing: withDefault(Preprocessing, {}),
  backend: withDefault(Backend, {}),
  postprocess: withDefault(Postprocess, {}),
  limits: withDefault(Limits, {}),
  scheduling: withDefault(Scheduling, {})
}

/** The whole of model.yaml; unknown keys are ignored here and judged by the loader (`unknownKeys`). */
export const ModelYaml = Schema.Struct(modelConfigFields)
export type ModelYaml = typeof ModelYaml.Type
/** The schema's name before the `ModelConfig` service took it. */
export const ModelConfigSchema = ModelYaml
export type ResourceRequirements = typeof ResourceRequirements.Type
export type OutputSchema = typeof OutputSchema.Type
export type Preprocessing = typeof Preprocessing.Type
export type Backend = typeof Backend.Type
export type Postprocess = typeof Postprocess.Type
export type Limits = typeof Limits.Type
export type Scheduling = typeof Scheduling.Type

/**
 * Known keys per mapping. In the runtime's own sections an unknown key is an error (a typo there
 * would silently change what the model does); in the original's mappings (the top level,
 * `resource_requirements`) it is an error only when it is a near miss of a known key, else a
 * warning, since the original's files may carry their own metadata.
 */
const knownKeys: ReadonlyArray<
  readonly [section: string | undefined, keys: ReadonlyArray<string>, strict: boolean]
> = [
  [undefined, Object.keys(modelConfigFields), false],
  ["resource_requirements", Object.keys(resourceRequirementsFields), false],
  ["preprocessing", Object.keys(preprocessingFields), true],
  ["backend", Object.keys(backendFields), true],
  ["limits", Object.keys(limitsFields), true],
  ["scheduling", Object.keys(schedulingFields), true]
  // output_schema is open-ended by contract ("e.g."): extra keys there are not suspicious.
  // postprocess is strict too; its keys depend on `kind` (see unknownKeys).
]

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** One thing wrong with a model.yaml; `path` is the dotted key ("" for the file as a whole). */
export interface ModelConfigProblem {
  readonly path: string
  readonly reason: string
}

/**
 * What kind of failure, so discovery can say `missing_weights` rather than `invalid_model_yaml`:
 * - `missing_file`: no model.yaml (or no such path)
 * - `unreadable`: it exists but cannot be read
 * - `missing_weights`: the YAML is valid and the only problem is that `model_weights` does not exist
 * - `not_model_yaml`: the file is not a model.yaml at all (not YAML, not a mapping, none of its keys)
 * - `invalid`: anything else (syntax, schema, unsupported model_type, missing class_names_file, ...)
 */
export type ModelConfigErrorKind = "missing_file" | "unreadable" | "missing_weights" | "invalid" | "not_model_yaml"

const formatProblems = (problems: ReadonlyArray<ModelConfigProblem>): string =>
  problems.map((p) => (p.path === "" ? p.reason : `${p.path}: ${p.reason}`)).join("; ")

/** A model.yaml that cannot be used; `message` names the file and lists every problem. */
export class ModelConfigError extends Data.TaggedError("ModelConfigError")<{
  readonly file: string
  readonly kind: ModelConfigErrorKind
  readonly problems: ReadonlyArray<ModelConfigProblem>
  /** The model_id from the file when it could be read, to say which model is broken. */
  readonly modelId: string | undefined
}> {
  /** The problems without the file name, e.g. for a discovery reason. */
  get details(): string {
    return formatProblems(this.problems)
  }
  override get message() {
    return `${this.file}: ${this.details}`
  }
}

// ---------------------------------------------------------------------------
// Decoding (pure)
// ---------------------------------------------------------------------------

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc === "" ? String(key) : `${acc}.${String(key)}`),
    ""
  )

/** YAML writes `key:` with no value as null: such keys count as absent. */
const dropNulls = (u: unknown): unknown =>
  isRecord(u)
    ? Object.fromEntries(Object.entries(u).flatMap(([k, v]) => (v === null ? [] : [[k, dropNulls(v)]])))
    : u

const valueAt = (u: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>((acc, key) => (isRecord(acc) && typeof key === "string" ? acc[key] : undefined), u)

/** The rule of the node an issue is about, if it states one (`must`). */
const mustOf = (issue: SchemaIssue.Issue): string | undefined => {
  const annotations = issue._tag === "Filter"
    ? issue.filter.annotations
    : "ast" in issue
    ? SchemaAST.resolve(issue.ast)
    : undefined
  const what = annotations?.[MUST]
  return typeof what === "string" ? what : undefined
}

/** A missing key is the caller's to word (it depends on the raw value); anything else as a reason. */
const reasonOf = (issue: SchemaIssue.Issue): string | undefined => {
  if (issue._tag === "MissingKey") return ""
  const what = mustOf(issue)
  if (what !== undefined) return `must be ${what}, got ${showValue(inputOf(issue))}`
  if (issue._tag === "InvalidType" && SchemaAST.isObjects(issue.ast)) {
    return `must be a mapping of keys, got ${showValue(inputOf(issue))}`
  }
  return undefined
}

const schemaProblems = (raw: unknown, error: Schema.SchemaError): ReadonlyArray<ModelConfigProblem> =>
  flattenIssue(error.issue, reasonOf).map((line) => ({
    path: formatPath(line.path),
    reason: line.issue._tag !== "MissingKey"
      ? line.message
      : valueAt(raw, line.path) === null
      ? "is required, but its value is empty"
      : "is required"
  }))

const describeTopLevel = (u: unknown): string =>
  u === null || u === undefined
    ? "the file is empty"
    : Array.isArray(u)
    ? "it is a YAML list, not a mapping of keys"
    : `it is ${showValue(u)}, not a mapping of keys`

/** The one problem of a file that is not a model.yaml at all: `not a model.yaml (<why>)`. */
const notModelYaml = (why: string): ReadonlyArray<ModelConfigProblem> => [{ path: "", reason: `not a model.yaml (${why})` }]

/** Keys any metadata file may have (package.json does): alone, they do not make a model.yaml. */
const GENERIC_KEYS: ReadonlySet<string> = new Set(["description", "author", "license"])

/** Why YAML text cannot be a model.yaml's: its kind of failure and the problems. */
export interface UnreadableYaml {
  readonly kind: "invalid" | "not_model_yaml"
  readonly problems: ReadonlyArray<ModelConfigProblem>
}

/** Keys whose value is text even when YAML reads it as a number (`model_version: 1.0`). */
const TEXT_KEYS = ["model_id", "model_name", "model_version", "description", "author", "license"] as const

export interface ParsedYaml {
  readonly raw: Raw
  readonly warnings: ReadonlyArray<string>
}

/**
 * YAML text → the top-level mapping, or why it cannot be read. A file named `.yaml`/`.yml` is
 * meant as YAML, so its syntax errors are reported with line and column; any other file that
 * is not YAML, YAML that is not a mapping, or a mapping with none of model.yaml's keys is
 * `not_model_yaml`, one line (`validate README.md` should not list a hundred syntax errors).
 */
export const parseModelYaml = (text: string, fileName = "model.yaml"): Result.Result<ParsedYaml, UnreadableYaml> => {
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true })
  if (doc.errors.length > 0) {
    // The first line holds the message and "at line L, column C"; the rest is a source excerpt.
    const errors = doc.errors.map((e) => `YAML syntax error: ${e.message.split("\n")[0]?.replace(/:$/, "")}`)
    return Result.fail(
      /\.ya?ml$/i.test(fileName)
        ? { kind: "invalid", problems: errors.map((reason) => ({ path: "", reason })) }
        : { kind: "not_model_yaml", problems: notModelYaml(`not YAML: ${errors[0]?.replace(/^YAML syntax error: /, "")}`) }
    )
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 })
  if (!isRecord(value)) return Result.fail({ kind: "not_model_yaml", problems: notModelYaml(describeTopLevel(value)) })
  if (!Object.keys(value).some((key) => key in modelConfigFields && !GENERIC_KEYS.has(key))) {
    return Result.fail({
      kind: "not_model_yaml",
      problems: notModelYaml("a mapping without any model.yaml key such as model_id, model_name or model_weights")
    })
  }
  const warnings: Array<string> = doc.warnings.map((w) => `YAML: ${w.message.split("\n")[0]}`)
  const raw: Raw = { ...value }
  for (const key of TEXT_KEYS) {
    const node = doc.get(key, true)
    if (YAML.isScalar(node) && typeof node.value === "number" && typeof node.source === "string") {
      raw[key] = node.source
      warnings.push(`${key}: ${node.source} is a YAML number, read as the text "${node.source}" (quote it to be explicit)`)
    }
  }
  return Result.succeed({ raw, warnings })
}

/** Edit distance with transpositions (optimal string alignment), ignoring case and `-` vs `_`. */
const editDistance = (a: string, b: string): number => {
  const x = a.toLowerCase().replaceAll("-", "_")
  const y = b.toLowerCase().replaceAll("-", "_")
  const d = Array.from({ length: x.length + 1 }, (_, i) => Array.from({ length: y.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  const at = (i: number, j: number) => d[i]![j]!
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost)
      if (i > 1 && j > 1 && x[i - 1] === y[j - 2] && x[i - 2] === y[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1)
      d[i]![j] = best
    }
  }
  return at(x.length, y.length)
}

/** The known key `key` is most likely a typo of: within 2 edits (1 for keys of up to 4 characters). */
const nearMiss = (key: string, known: ReadonlyArray<string>): string | undefined => {
  const limit = key.length <= 4 ? 1 : 2
  let best: { key: string; distance: number } | undefined
  for (const candidate of known) {
    const distance = editDistance(key, candidate)
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { key: candidate, distance }
  }
  return best?.key
}

/**
 * Unknown keys in model.yaml: problems where a typo would change what runs (any unknown key in
 * the runtime's sections, a near miss anywhere), warnings for the rest.
 */
export const unknownKeys = (raw: Raw): { problems: ReadonlyArray<ModelConfigProblem>; warnings: ReadonlyArray<string> } => {
  const problems: Array<ModelConfigProblem> = []
  const warnings: Array<string> = []
  const check = (section: string | undefined, value: unknown, keys: ReadonlyArray<string>, strict: boolean, takes: string) => {
    if (!isRecord(value)) return
    for (const key of Object.keys(value)) {
      if (keys.includes(key)) continue
      const path = section === undefined ? key : `${section}.${key}`
      const guess = nearMiss(key, keys)
      if (guess !== undefined) problems.push({ path, reason: `unknown key, did you mean ${guess}?` })
      else if (strict) problems.push({ path, reason: `unknown key (${takes}: ${keys.join(", ")})` })
      else warnings.push(`unknown key '${path}' is ignored`)
    }
  }
  for (const [section, keys, strict] of knownKeys) {
    check(section, section === undefined ? raw : raw[section], keys, strict, `${section ?? "model.yaml"} takes`)
  }
  const post = raw["postprocess"]
  if (isRecord(post)) {
    const kind = post["kind"] ?? "none"
    // An invalid kind is reported by the schema; its options cannot be judged.
    if (typeof kind === "string" && kind in postprocessKeys) {
      check("postprocess", post, postprocessKeys[kind as keyof typeof postprocessKeys], true, `kind ${kind} takes`)
    }
  }
  return { problems, warnings }
}

/** Decodes a parsed model.yaml mapping against the schema, collecting every problem. */
const decodeModelConfigResult = Schema.decodeUnknownResult(ModelYaml)

export const decodeModelConfig = (raw: unknown): Result.Result<ModelYaml, ReadonlyArray<ModelConfigProblem>> =>
  decodeModelConfigResult(dropNulls(raw), { errors: "all", onExcessProperty: "ignore", reportInput: true }).pipe(
    Result.mapError((error) => schemaProblems(raw, error))
  )
