/**
 * @ruth-ai/model-runtime — everything a model author imports.
 */
export { VERSION } from "./version.js"

export * from "./contract/schema.js"
export * from "./contract/errors.js"
export { DEFAULT_MAX_MESSAGE_BYTES, encodeMessage, FrameDecoder, type DecodedEvent } from "./contract/codec.js"

export { RuntimeConfig, type RuntimeSettings, type RuntimeSettingsInput, socketPathFor, heartbeatPathFor } from "./config/RuntimeConfig.js"

export type { Frame, PixelFormat } from "./frames/Frame.js"
export { FrameReader, type FrameReaderShape } from "./frames/FrameReader.js"
export * from "./frames/transform.js"

export { InferenceHandler, type InferenceHandlerShape, type InferenceOutput } from "./container/InferenceHandler.js"
export * as ModelContainer from "./container/ModelContainer.js"
export type { RunningContainer } from "./container/ModelContainer.js"

export { ClientError, type ClientOptions, type HealthResponse, makeClient, ModelClient, type ModelClientShape } from "./ipc/ModelClient.js"
