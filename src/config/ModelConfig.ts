/**
 * model.yaml (CONTRACT §6) and the runtime's extension sections (`preprocessing`,
 * `backend`, `postprocess`, `limits`): the schema, the loader that checks the
 * files it names, and the CPU/GPU decision.
 *
 * The decoded config keeps the YAML's snake_case keys so every problem path
 * (`resource_requirements.cpu_fallback_allowed`) is exactly what the author wrote;
 * the one camelCase view is `PreprocessSettings`, consumed by the preprocess module.
 *
 * `loadModelConfig` uses `node:fs/promises` directly, so its requirement channel is empty.
 */
import type { PreprocessOptions } from "../frames/preprocess.js"
import * as fs from "node:fs/promises"
import * as nodePath from "node:path"
import { Config, Data, Effect, Option, Result, Schema, SchemaAST, SchemaGetter, type SchemaIssue } from "effect"
import * as YAML from "yaml"
import { flattenIssue, inputOf } from "../internal/schemaIssues.js"
import { MODEL_ID_PATTERN, type ModelYamlSettings, PER_CAMERA, type RuntimeSettingsInput, showValue } from "./RuntimeConfig.js"

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

type Raw = Record<string, unknown>

const isRecord = (u: unknown): u is Raw => typeof u === "object" && u !== null && !Array.isArray(u)

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
export const ModelConfig = Schema.Struct(modelConfigFields)
export type ModelConfig = typeof ModelConfig.Type
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
// Preprocess settings (camelCase, for the preprocess module)
// ---------------------------------------------------------------------------

/** The model.yaml `preprocessing` section in the form the preprocess module takes. */
export type PreprocessSettings = PreprocessOptions

/** Model input size is `preprocessing.input_size`, else `expected_resolution`. */
export const toPreprocessSettings = (
  config: Pick<ModelConfig, "preprocessing" | "expected_resolution">
): PreprocessSettings => {
  const p = config.preprocessing
  const [width, height] = p.input_size ?? config.expected_resolution
  return {
    width,
    height,
    resize: p.resize,
    padValue: p.pad_value,
    colorMatrix: p.color_matrix,
    range: p.color_range,
    channelOrder: p.channel_order,
    scale: p.scale,
    mean: p.mean,
    std: p.std,
    layout: p.layout,
    dtype: p.dtype
  }
}

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
const unknownKeys = (raw: Raw): { problems: ReadonlyArray<ModelConfigProblem>; warnings: ReadonlyArray<string> } => {
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
const decodeModelConfigResult = Schema.decodeUnknownResult(ModelConfig)

export const decodeModelConfig = (raw: unknown): Result.Result<ModelConfig, ReadonlyArray<ModelConfigProblem>> =>
  decodeModelConfigResult(dropNulls(raw), { errors: "all", onExcessProperty: "ignore", reportInput: true }).pipe(
    Result.mapError((error) => schemaProblems(raw, error))
  )

// ---------------------------------------------------------------------------
// Loading (files)
// ---------------------------------------------------------------------------

/** @internal An fs failure reduced to what a reason needs. */
export interface FsFailure {
  readonly code: string
  readonly message: string
}

/** @internal Runs an fs promise, with its failure as data. */
export const tryFs = <A>(f: () => Promise<A>): Effect.Effect<A, FsFailure> =>
  Effect.tryPromise({
    try: f,
    catch: (e): FsFailure =>
      e instanceof Error
        ? { code: "code" in e && typeof e.code === "string" ? e.code : "EUNKNOWN", message: e.message }
        : { code: "EUNKNOWN", message: String(e) }
  })

const NOT_FOUND = new Set(["ENOENT", "ENOTDIR", "ELOOP"])

export interface LoadedModelConfig {
  /** The decoded model.yaml, snake_case keys as written, defaults filled in. */
  readonly config: ModelConfig
  /** Absolute model directory (the one holding model.yaml). */
  readonly directory: string
  /** Absolute path of model.yaml. */
  readonly file: string
  /** Absolute path of `model_weights`, checked to exist. */
  readonly weightsPath: string
  /** From `output_schema.class_names` or `class_names_file`; index = class id. */
  readonly classNames: ReadonlyArray<string>
  readonly preprocess: PreprocessSettings
  /** Things that do not stop the model but an operator should see (unknown keys, ...). */
  readonly warnings: ReadonlyArray<string>
}

const rawString = (value: unknown): string | undefined =>
  typeof value === "string" && value.trim().length > 0 ? value : undefined

const fail = (file: string, kind: ModelConfigErrorKind, reason: string, modelId?: string) =>
  new ModelConfigError({ file, kind, problems: [{ path: "", reason }], modelId })

/** Where model.yaml is for a directory or file argument. */
const locate = (target: string): Effect.Effect<{ directory: string; file: string }, ModelConfigError> =>
  Effect.gen(function*() {
    const absolute = nodePath.resolve(target)
    const stat = yield* Effect.result(tryFs(() => fs.stat(absolute)))
    if (Result.isFailure(stat)) {
      const kind = NOT_FOUND.has(stat.failure.code) ? "missing_file" : "unreadable"
      return yield* fail(absolute, kind, kind === "missing_file" ? "not found" : `cannot access: ${stat.failure.code}`)
    }
    return stat.success.isDirectory()
      ? { directory: absolute, file: nodePath.join(absolute, "model.yaml") }
      : { directory: nodePath.dirname(absolute), file: absolute }
  })

const readText = (file: string): Effect.Effect<string, ModelConfigError> =>
  tryFs(() => fs.readFile(file, "utf8")).pipe(
    Effect.mapError((e) =>
      NOT_FOUND.has(e.code)
        ? fail(file, "missing_file", `not found (every model directory needs a model.yaml)`)
        : e.code === "EISDIR"
        ? fail(file, "invalid", "is a directory, not a file")
        : fail(file, "unreadable", `cannot be read: ${e.code}`)
    )
  )

/** The weights must be an existing, readable file. */
const checkWeights = (weightsPath: string): Effect.Effect<ModelConfigProblem | undefined> =>
  Effect.gen(function*() {
    const stat = yield* Effect.result(tryFs(() => fs.stat(weightsPath)))
    if (Result.isFailure(stat)) {
      return NOT_FOUND.has(stat.failure.code)
        ? { path: "model_weights", reason: `file not found: ${weightsPath}` }
        : { path: "model_weights", reason: `cannot access ${weightsPath}: ${stat.failure.code}` }
    }
    if (!stat.success.isFile()) return { path: "model_weights", reason: `not a file: ${weightsPath}` }
    const readable = yield* Effect.result(tryFs(() => fs.access(weightsPath, fs.constants.R_OK)))
    return Result.isFailure(readable)
      ? { path: "model_weights", reason: `not readable: ${weightsPath} (${readable.failure.code})` }
      : undefined
  })

const CLASS_NAMES_FILE = "output_schema.class_names_file"

/** One class name per line; trailing blank lines are fine, blank lines in between would shift class ids. */
const readClassNames = (file: string): Effect.Effect<Result.Result<ReadonlyArray<string>, ModelConfigProblem>> =>
  tryFs(() => fs.readFile(file, "utf8")).pipe(
    Effect.map((text) => {
      const lines = text.split("\n").map((line) => line.trim())
      while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop()
      if (lines.length === 0) return Result.fail({ path: CLASS_NAMES_FILE, reason: `file is empty: ${file}` })
      const blank = lines.indexOf("")
      return blank >= 0
        ? Result.fail({
          path: CLASS_NAMES_FILE,
          reason: `line ${blank + 1} of ${file} is blank (one class name per line; the line number is the class id)`
        })
        : Result.succeed(lines)
    }),
    Effect.catch((e) =>
      Effect.succeed(Result.fail({
        path: CLASS_NAMES_FILE,
        reason: NOT_FOUND.has(e.code) ? `file not found: ${file}` : `cannot read ${file}: ${e.code}`
      }))
    )
  )

/** The message for a model whose format this runtime cannot execute. */
export const unsupportedModelTypeReason = (modelType: string): string =>
  `model_type '${modelType}' is not supported by this runtime; export the model to ONNX and set model_type: onnx`

/**
 * Reads and validates a model: `target` is a model directory or its model.yaml.
 * Every problem (syntax, schema, unsupported model_type, missing weights,
 * missing class_names_file) is reported together in one `ModelConfigError`.
 */
export const loadModelConfig: (target: string) => Effect.Effect<LoadedModelConfig, ModelConfigError> = Effect.fn(
  "loadModelConfig"
)(function*(target: string) {
  const { directory, file } = yield* locate(target)
  const text = yield* readText(file)
  const parsed = parseModelYaml(text, nodePath.basename(file))
  if (Result.isFailure(parsed)) {
    return yield* new ModelConfigError({ file, kind: parsed.failure.kind, problems: parsed.failure.problems, modelId: undefined })
  }
  const { raw } = parsed.success
  const modelId = rawString(raw["model_id"])
  const decoded = decodeModelConfig(raw)
  const unknown = unknownKeys(raw)
  const problems: Array<ModelConfigProblem> = [...(Result.isFailure(decoded) ? decoded.failure : []), ...unknown.problems]

  // File checks use the raw values so they are reported even when other keys are invalid.
  if (raw["model_type"] === "pytorch") problems.push({ path: "model_type", reason: unsupportedModelTypeReason("pytorch") })
  const weights = rawString(raw["model_weights"])
  const weightsPath = weights === undefined ? undefined : nodePath.resolve(directory, weights)
  const weightsProblem = weightsPath === undefined ? undefined : yield* checkWeights(weightsPath)
  if (weightsProblem !== undefined) problems.push(weightsProblem)

  const output = raw["output_schema"]
  const namesFile = isRecord(output) ? rawString(output["class_names_file"]) : undefined
  const namesFromFile = namesFile === undefined
    ? undefined
    : yield* readClassNames(nodePath.resolve(directory, namesFile))
  if (namesFromFile !== undefined && Result.isFailure(namesFromFile)) problems.push(namesFromFile.failure)

  if (Result.isFailure(decoded) || problems.length > 0 || weightsPath === undefined) {
    const onlyWeightsMissing = problems.length === 1 && weightsProblem?.reason.startsWith("file not found") === true
    return yield* new ModelConfigError({
      file,
      kind: onlyWeightsMissing ? "missing_weights" : "invalid",
      problems,
      modelId
    })
  }

  const config = decoded.success
  const classNames = namesFromFile !== undefined && Result.isSuccess(namesFromFile)
    ? namesFromFile.success
    : config.output_schema.class_names ?? []
  const warnings = [...parsed.success.warnings, ...unknown.warnings]
  const classes = config.output_schema.classes
  if (classes !== undefined && classNames.length > 0 && classNames.length !== classes) {
    warnings.push(`output_schema: classes is ${classes} but ${classNames.length} class names are given`)
  }
  return { config, directory, file, weightsPath, classNames, preprocess: toPreprocessSettings(config), warnings }
})

// ---------------------------------------------------------------------------
// Device (CPU / GPU)
// ---------------------------------------------------------------------------

/** The model cannot run on this machine because it needs a GPU that is not there. */
export class GpuUnavailable extends Data.TaggedError("GpuUnavailable")<{
  readonly modelId: string
  readonly reason: string
}> {
  override get message() {
    return this.reason
  }
}

export interface DeviceChoice {
  readonly device: "cpu" | "cuda"
  /** Set when the model asked for CUDA and was moved to CPU. */
  readonly warning?: string
}

/**
 * Picks the device from what the model asks for and whether a GPU is present:
 * - `gpu_required: true`: cuda, or refuse without a GPU;
 * - `execution_providers` with cuda: cuda, or without a GPU cpu (with a warning)
 *   if `cpu_fallback_allowed`, else refuse;
 * - otherwise cpu.
 */
export const resolveDevice = (
  config: Pick<ModelConfig, "model_id" | "resource_requirements" | "backend">,
  gpuAvailable: boolean
): Result.Result<DeviceChoice, GpuUnavailable> => {
  const { gpu_required, cpu_fallback_allowed } = config.resource_requirements
  const wantsCuda = gpu_required || config.backend.execution_providers.includes("cuda")
  if (!wantsCuda) return Result.succeed({ device: "cpu" })
  if (gpuAvailable) return Result.succeed({ device: "cuda" })
  const id = config.model_id
  if (gpu_required) {
    return Result.fail(
      new GpuUnavailable({
        modelId: id,
        reason: `model ${id} requires a GPU (resource_requirements.gpu_required: true) but none is available`
      })
    )
  }
  if (cpu_fallback_allowed) {
    return Result.succeed({
      device: "cpu",
      warning:
        `model ${id} asks for cuda (backend.execution_providers) but no GPU is available; running on CPU (resource_requirements.cpu_fallback_allowed: true)`
    })
  }
  return Result.fail(
    new GpuUnavailable({
      modelId: id,
      reason:
        `model ${id} asks for cuda (backend.execution_providers) and forbids CPU fallback (resource_requirements.cpu_fallback_allowed: false) but no GPU is available`
    })
  )
}

const GPU_DEVICES = ["/dev/nvidiactl", "/dev/nvidia0"] as const

/**
 * Whether an NVIDIA GPU is visible to this process. `RUTH_GPU_AVAILABLE=0|1`
 * overrides the check (tests, or hosts where the device nodes lie); an invalid
 * value is logged and ignored.
 */
export const detectGpu: Effect.Effect<boolean> = Effect.gen(function*() {
  const override = yield* Config.option(Config.Boolean("RUTH_GPU_AVAILABLE")).pipe(
    Effect.map(Option.getOrUndefined),
    Effect.catch((e) => Effect.as(Effect.logWarning(`ignoring RUTH_GPU_AVAILABLE: ${e}`), undefined))
  )
  if (override !== undefined) return override
  const found = yield* Effect.forEach(GPU_DEVICES, (device) => Effect.result(tryFs(() => fs.access(device))))
  return found.some(Result.isSuccess)
}).pipe(Effect.withSpan("detectGpu"))

/** Each runtime setting a model.yaml may give: its key there and where the decoded file holds it. */
const MODEL_YAML_SETTINGS: ReadonlyArray<readonly [keyof RuntimeSettingsInput, string, (c: ModelConfig) => unknown]> = [
  ["modelId", "model_id", (c) => c.model_id],
  ["modelVersion", "model_version", (c) => c.model_version],
  ["maxInflight", "limits.max_inflight", (c) => c.limits.max_inflight],
  ["requestTimeoutMs", "limits.request_timeout_ms", (c) => c.limits.request_timeout_ms],
  ["maxFrameAgeMs", "scheduling.max_frame_age_ms", (c) => c.scheduling.max_frame_age_ms],
  ["perCamera", "scheduling.per_camera", (c) => c.scheduling.per_camera],
  ["streams", "scheduling.streams", (c) => c.scheduling.streams],
  ["maxBatch", "scheduling.max_batch", (c) => c.scheduling.max_batch],
  ["maxQueueDelayMs", "scheduling.max_queue_delay_ms", (c) => c.scheduling.max_queue_delay_ms]
]

/** The runtime settings a model.yaml contributes (below the environment and flags), named by their keys there. */
export const settingsFromModel = (model: LoadedModelConfig): ModelYamlSettings => {
  const values: Record<string, unknown> = {}
  const names: Record<string, string> = {}
  for (const [key, name, get] of MODEL_YAML_SETTINGS) {
    const value = get(model.config)
    if (value === undefined) continue
    values[key] = value
    names[key] = name
  }
  return { file: model.file, values: values as Partial<RuntimeSettingsInput>, names }
}
