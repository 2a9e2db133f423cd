import { describe, expect, it } from "vitest"
import { describeHealth } from "../../src/cli/health.js"
import type { HealthResponse } from "../../src/ipc/ModelClient.js"

const health: HealthResponse = {
  op: "health",
  status: "ready",
  model_id: "text-detection",
  model_version: "4.0.0",
  version: "0.1.0",
  uptime_seconds: 12,
  total_requests: 340,
  total_errors: 300,
  inflight: 2,
  max_inflight: 64
}

describe("ruth-model health, the line for a person", () => {
  it("names the scheduler's drops by reason when there were any", () => {
    const line = describeHealth({ ...health, dropped_by_reason: { expired: 3, superseded: 290, deadline: 0, displaced: 7 } })
    expect(line).toBe(
      "ready: model text-detection 4.0.0 (runtime 0.1.0), up 12s, 340 requests, 300 errors, 2/64 in flight; not run: 290 superseded, 3 expired, 7 displaced"
    )
  })

  it("says nothing of drops when there were none, or when the server does not report them (the original)", () => {
    const plain = "ready: model text-detection 4.0.0 (runtime 0.1.0), up 12s, 340 requests, 300 errors, 2/64 in flight"
    expect(describeHealth({ ...health, dropped_by_reason: { expired: 0, superseded: 0, deadline: 0, displaced: 0 } })).toBe(plain)
    expect(describeHealth(health)).toBe(plain)
  })
})
