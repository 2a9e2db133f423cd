/**
 * @ruth-ai/model-runtime — everything a model author imports.
 */
export { VERSION } from "./version.js"

// The wire contract
export * from "./contract/schema.js"
export * from "./contract/errors.js"
export { DEFAULT_MAX_MESSAGE_BYTES, type DecodedEvent, encodeMessage, FrameDecoder } from "./contract/codec.js"

// Configuration
export {
  describeSettings,
  heartbeatPathFor,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevelName,
  InvalidSettings,
  MissingModelId,
  programEnvironment,
  resolveSettings,
  RuntimeConfig,
  type RuntimeSettings,
  type RuntimeSettingsInput,
  settingsFromModel,
  socketPathFor
} from "./config/RuntimeConfig.js"
// `ModelConfig` is the loaded model's service; the model.yaml schema is `ModelYaml` (also `ModelConfigSchema`).
export { ModelConfig } from "./config/ModelConfig.js"
export { type LoadedModelConfig, loadModelConfig } from "./config/ModelLoader.js"
export { ModelConfigError, ModelConfigSchema, ModelYaml } from "./config/ModelYaml.js"
export {
  type DiscoveredModel,
  discoverModels,
  findModel,
  ModelNotFound,
  ModelsDirError,
  ModelUnavailable,
  selectModel
} from "./config/ModelDiscovery.js"

// Frames
export type { Frame, PixelFormat } from "./frames/Frame.js"
export { FrameReader, type FrameReaderShape } from "./frames/FrameReader.js"
export { BufferPool } from "./frames/BufferPool.js"
export * from "./frames/transform.js"
export {
  defaultPreprocessOptions,
  makePreprocessOptions,
  preprocess,
  type Preprocessed,
  PreprocessError,
  type PreprocessOptions,
  tensorDims,
  tensorLength
} from "./frames/preprocess.js"
export { annotateJpeg, frameToJpeg, imageToNv12, nv12ToRgb, rgbToNv12 } from "./frames/image.js"
export { encodeFrameMeta, publishExportDir, publishRaw, sharedMemoryDir } from "./frames/publish.js"

// Inference
export {
  type DetectionOutput,
  InferenceHandler,
  type InferenceHandlerShape,
  type InferenceOutput,
  type InferenceResult,
  type Turn
} from "./inference/InferenceHandler.js"
export {
  type Batch,
  layer as schedulerLayer,
  layerWith as schedulerLayerWith,
  make as makeScheduler,
  Scheduler,
  type SchedulerOptions,
  type SchedulerShape,
  type Refused,
  type Slot,
  type Ticket,
  ticketOf,
  type Work
} from "./inference/Scheduler.js"
export { PER_CAMERA, type PerCamera } from "./config/RuntimeConfig.js"
export {
  ExecutionProviderUnavailable,
  type FakeModel,
  type FakeOnnxSessions,
  type FakeRun,
  type InputTensor,
  layer as onnxSessionsLayer,
  makeFake as makeFakeOnnxSessions,
  OnnxModelLoadFailed,
  OnnxRunFailed,
  type OnnxSession,
  type OnnxSessionOptions,
  OnnxSessions,
  type OnnxSessionsShape,
  type ValueInfo
} from "./inference/OnnxSession.js"
export { type DeviceChoice, detectGpu, GpuUnavailable, resolveDevice } from "./inference/device.js"
export { type PreprocessSettings, toPreprocessSettings } from "./inference/preprocessSettings.js"
export { decodeYolo } from "./inference/postprocess/yolo.js"
export { decodeDbText } from "./inference/postprocess/dbText.js"
export { nonMaxSuppression } from "./inference/postprocess/nms.js"

// The runtime
export * as ModelContainer from "./container/ModelContainer.js"
export type { RunningContainer } from "./container/ModelContainer.js"
export { METRICS_CONTENT_TYPE, MetricsListenError } from "./container/Prometheus.js"
export {
  DEFAULT_SAMPLE_RATIO,
  parseTraceparent,
  type Sampler,
  settingsFromEnvironment as tracingSettingsFromEnvironment,
  type TracingSettings
} from "./container/Tracing.js"
// Log lines: the JSON and pretty loggers `launch*` installs, and a message with fields for them.
export * as Logging from "./container/Logging.js"
export { LogRecord } from "./internal/logRecord.js"

// Talking to a container
export {
  IpcServer,
  type IpcServerOptions,
  ListenError,
  type MemoryConnection,
  MemoryTransport,
  memoryTransport,
  type MessageHandler,
  NotConnected,
  type Reply,
  socketTransport,
  Transport
} from "./ipc/IpcServer.js"
export {
  ClientError,
  type ClientOptions,
  type HealthResponse,
  makeClient,
  type MetricsResponse,
  ModelClient,
  type ModelClientShape
} from "./ipc/ModelClient.js"
export {
  type Histogram,
  histogramDelta,
  histogramOf,
  histogramQuantile,
  parsePrometheusText,
  type PrometheusSample,
  PrometheusTextError
} from "./ipc/prometheusText.js"
