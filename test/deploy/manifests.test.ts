/**
 * The deployment files (deploy/compose.yaml, deploy/kubernetes/*.yaml) and the image files
 * (docker/Dockerfile, examples' Dockerfiles) agree with the runtime's defaults: the volumes the
 * core and the models share, the socket paths the probes use, the environment, the versions.
 * Paths come from src/config/RuntimeConfig.ts, never written here.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { parse, parseAllDocuments } from "yaml"
import { DEFAULT_MODELS_DIR } from "../../src/cli/models.js"
import { loadModelConfig } from "../../src/config/ModelConfig.js"
import { defaults, heartbeatPathFor, parseListenAddress, socketPathFor } from "../../src/config/RuntimeConfig.js"

const root = path.resolve(import.meta.dirname, "..", "..")
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8")
const version: string = JSON.parse(read("package.json")).version

const FRAMES_DIR = "/dev/shm"
const HEALTH = (socket: string) => ["ruth-model", "health", "--socket", socket]

/** Is `file` inside directory `dir`? */
const under = (dir: string, file: string) => !path.relative(dir, file).startsWith("..")

// ---------------------------------------------------------------------------------------------
// Dockerfiles

interface Dockerfile {
  readonly args: Record<string, string>
  readonly env: Record<string, string>
  readonly instructions: ReadonlyArray<{ readonly op: string; readonly value: string }>
}

/** A small Dockerfile reader: joins continuation lines, drops comments; ARG/ENV as key=value. */
const readDockerfile = (file: string): Dockerfile => {
  const lines = read(file).split("\n").filter((l) => !/^\s*#/.test(l))
  const joined = lines.join("\n").replace(/\\\n/g, " ")
  const instructions = joined
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/)
      return { op: op!.toUpperCase(), value: rest.join(" ") }
    })
  // `ARG NAME` again after FROM (to use it in the stage) keeps the value given before
  const pairs = (op: string) => {
    const values: Record<string, string> = {}
    for (const i of instructions.filter((i) => i.op === op)) {
      for (const m of i.value.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=("[^"]*"|\S*))?/g)) {
        if (m[2] !== undefined || !(m[1]! in values)) values[m[1]!] = (m[2] ?? "").replace(/^"|"$/g, "")
      }
    }
    return values
  }
  return { args: pairs("ARG"), env: pairs("ENV"), instructions }
}

const one = (d: Dockerfile, op: string) => {
  const found = d.instructions.filter((i) => i.op === op)
  expect(found, `exactly one ${op}`).toHaveLength(1)
  return found[0]!.value
}

const base = readDockerfile("docker/Dockerfile")
/** The image's user (USER uid:gid), which deployments must run as. */
const imageUser = one(base, "USER")

/** Expands $VAR / ${VAR} with the model image's environment on top of the base image's. */
const expand = (text: string, env: Record<string, string>) =>
  text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => env[name] ?? "")

const modelImages = [
  { dockerfile: "examples/minimal/Dockerfile", modelId: "minimal" },
  { dockerfile: "examples/text-detection-image/Dockerfile", modelId: "text-detection" }
] as const

describe("docker/Dockerfile (base image)", () => {
  it("builds on a swappable Node 24 slim image, as a non-root user in /app", () => {
    expect(base.args.NODE_IMAGE).toBe("node:24-bookworm-slim")
    expect(one(base, "FROM")).toBe("${NODE_IMAGE}")
    expect(imageUser).toMatch(/^[1-9]\d*:[1-9]\d*$/)
    expect(one(base, "WORKDIR")).toBe("/app")
    expect(one(base, "STOPSIGNAL")).toBe("SIGTERM")
  })

  it("keeps the runtime's default socket dir and skips onnxruntime's CUDA download", () => {
    expect(base.env.RUTH_SOCKET_DIR).toBe(defaults.socketDir)
    expect(base.args.ONNXRUNTIME_NODE_INSTALL).toBe("skip")
  })

  it("labels the image with its version and prints usage (exit non-zero) when run as is", () => {
    expect(one(base, "LABEL")).toContain('org.opencontainers.image.version="${RUNTIME_VERSION}"')
    expect(one(base, "CMD")).toMatch(/exit [1-9]/)
  })
})

describe.each(modelImages)("$dockerfile (model image)", ({ dockerfile, modelId }) => {
  const d = readDockerfile(dockerfile)
  const env = { ...base.env, ...d.env }

  it("is FROM the base image pinned to the package version", () => {
    expect(d.args.RUNTIME_IMAGE).toBe(`ruth-ai/model-runtime:${version}`)
    expect(one(d, "FROM")).toBe("${RUNTIME_IMAGE}")
  })

  it("names its model and checks health on the runtime's socket path", () => {
    expect(env.RUTH_MODEL_ID).toBe(modelId)
    const check = one(d, "HEALTHCHECK")
    const command = expand(check.slice(check.indexOf("CMD ") + 4), env).replace(/"/g, "").split(/\s+/)
    expect(command).toEqual(HEALTH(socketPathFor(defaults.socketDir, modelId)))
  })

  it("runs Node as PID 1 (CMD in exec form)", () => {
    expect(JSON.parse(one(d, "CMD"))).toBeInstanceOf(Array)
  })
})

describe("examples/text-detection-image", () => {
  const dir = "examples/text-detection-image"
  const d = readDockerfile(`${dir}/Dockerfile`)
  const imageYaml = parse(read(`${dir}/model.yaml`))
  const repoYaml = parse(read("examples/models/text-detection/model.yaml"))

  it("is examples/models/text-detection with the weights beside model.yaml", () => {
    const { model_weights: weights, ...rest } = imageYaml
    const { model_weights: repoWeights, ...repoRest } = repoYaml
    expect(rest).toEqual(repoRest)
    expect(path.basename(repoWeights)).toBe(weights)
    expect(weights).toBe(path.basename(weights))
  })

  it("copies model.yaml and the weights into {models_dir}/{model_id}/ and serves that model", () => {
    const modelDir = `${DEFAULT_MODELS_DIR}/${imageYaml.model_id}/`
    expect(one(d, "COPY").split(/\s+/)).toEqual(["model.yaml", imageYaml.model_weights, modelDir])
    expect(JSON.parse(one(d, "CMD"))).toEqual([
      "ruth-model", "serve", "--models-dir", DEFAULT_MODELS_DIR, "--model-id", imageYaml.model_id
    ])
    expect(d.env.RUTH_MODEL_ID).toBe(imageYaml.model_id)
  })

  it.effect("its model.yaml loads with the runtime's loader", () =>
    Effect.gen(function*() {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ruth-image-model-"))
      try {
        fs.copyFileSync(path.join(root, dir, "model.yaml"), path.join(tmp, "model.yaml"))
        const weights = path.resolve(root, "examples/models/text-detection", repoYaml.model_weights)
        fs.symlinkSync(weights, path.join(tmp, imageYaml.model_weights))
        const loaded = yield* loadModelConfig(tmp)
        expect(loaded.config.model_id).toBe("text-detection")
        expect(loaded.weightsPath).toBe(path.join(tmp, imageYaml.model_weights))
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true })
      }
    }))
})

// ---------------------------------------------------------------------------------------------
// Deployments

interface Mount {
  readonly volume: string
  readonly path: string
  readonly readOnly: boolean
}

/** One container of a deployment, reduced to what both formats say. */
interface Container {
  readonly name: string
  readonly image: string
  readonly env: Record<string, string>
  readonly mounts: ReadonlyArray<Mount>
  readonly command: ReadonlyArray<string>
  /** Health commands (probes / healthcheck) as argv. */
  readonly probes: Record<string, ReadonlyArray<string>>
  readonly resources: { readonly requests: Record<string, unknown>; readonly limits: Record<string, unknown> }
  readonly user: string | undefined
  /** The ports it declares (k8s `ports`, compose `ports`' container side), by name (compose: by port). */
  readonly ports: Record<string, number>
}

interface Group {
  readonly source: string
  readonly containers: ReadonlyArray<Container>
  /** Volumes kept in memory (tmpfs). */
  readonly memoryVolumes: ReadonlySet<string>
  readonly volumes: ReadonlySet<string>
  readonly gracePeriodMs: number
  /** `prometheus.io/*` scrape annotations (k8s: the pod's; compose: each model service's labels, merged). */
  readonly scrape: Record<string, string>
}

const seconds = (value: string | number) =>
  typeof value === "number" ? value * 1000 : Number(value.replace(/s$/, "")) * 1000

const kubernetesGroups = (): Array<Group> =>
  fs
    .readdirSync(path.join(root, "deploy/kubernetes"))
    .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
    .flatMap((file) =>
      parseAllDocuments(read(`deploy/kubernetes/${file}`)).map((doc) => {
        expect(doc.errors, `${file}: ${doc.errors.join("; ")}`).toEqual([])
        return { file, manifest: doc.toJS() }
      })
    )
    .flatMap(({ file, manifest }) => {
      const pod = manifest.kind === "Pod" ? manifest.spec : manifest.spec?.template?.spec
      if (pod === undefined) return []
      const volumes: Array<any> = pod.volumes ?? []
      const security = pod.securityContext ?? {}
      return [{
        source: `${file} ${manifest.kind}/${manifest.metadata.name}`,
        memoryVolumes: new Set(volumes.filter((v) => v.emptyDir?.medium === "Memory").map((v) => v.name)),
        volumes: new Set(volumes.filter((v) => v.emptyDir !== undefined).map((v) => v.name)),
        gracePeriodMs: (pod.terminationGracePeriodSeconds ?? 30) * 1000,
        scrape: manifest.spec?.template?.metadata?.annotations ?? {},
        containers: (pod.containers as Array<any>).map((c): Container => ({
          name: c.name,
          image: c.image,
          env: Object.fromEntries((c.env ?? []).map((e: any) => [e.name, String(e.value)])),
          mounts: (c.volumeMounts ?? []).map((m: any) => ({ volume: m.name, path: m.mountPath, readOnly: m.readOnly === true })),
          command: [...(c.command ?? []), ...(c.args ?? [])],
          probes: Object.fromEntries(
            ["startupProbe", "readinessProbe", "livenessProbe"].filter((p) => c[p]).map((p) => [p, c[p].exec?.command ?? []])
          ),
          resources: { requests: c.resources?.requests ?? {}, limits: c.resources?.limits ?? {} },
          user: security.runAsUser === undefined ? undefined : `${security.runAsUser}:${security.runAsGroup}`,
          ports: Object.fromEntries((c.ports ?? []).map((p: any) => [p.name, p.containerPort]))
        }))
      }]
    })

const composeGroup = (): Group => {
  const compose = parse(read("deploy/compose.yaml"), { merge: true })
  const volumes: Record<string, any> = compose.volumes ?? {}
  const composeEnv = (env: unknown): Record<string, string> =>
    Array.isArray(env)
      ? Object.fromEntries(env.map((e: string) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]))
      : Object.fromEntries(Object.entries((env ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]))
  const services = Object.entries(compose.services as Record<string, any>)
  return {
    source: "compose.yaml",
    memoryVolumes: new Set(Object.keys(volumes).filter((v) => volumes[v]?.driver_opts?.type === "tmpfs")),
    volumes: new Set(Object.keys(volumes)),
    scrape: Object.assign({}, ...services.map(([, s]) => s.labels ?? {})),
    gracePeriodMs: Math.min(...services.filter(([, s]) => s.environment?.RUTH_MODEL_ID).map(([, s]) => seconds(s.stop_grace_period ?? 10))),
    containers: services.map(([name, s]): Container => ({
      name,
      image: s.image,
      env: composeEnv(s.environment),
      mounts: (s.volumes ?? []).map((v: string) => {
        const [volume, mountPath, mode] = v.split(":")
        return { volume: volume!, path: mountPath!, readOnly: mode === "ro" }
      }),
      command: s.command ?? [],
      probes: s.healthcheck ? { healthcheck: (s.healthcheck.test as Array<string>).slice(1) } : {},
      resources: {
        requests: s.deploy?.resources?.reservations ?? {},
        limits: s.deploy?.resources?.limits ?? {}
      },
      user: s.user,
      ports: Object.fromEntries((s.ports ?? []).map((p: string) => {
        const port = Number(p.split(":").at(-1))
        return [String(port), port]
      }))
    }))
  }
}

const groups = [composeGroup(), ...kubernetesGroups()]
const models = (g: Group) => g.containers.filter((c) => c.env.RUTH_MODEL_ID !== undefined)

it("deploy/ has the compose file and pods with models", () => {
  expect(groups.map((g) => g.source)).toContain("compose.yaml")
  expect(groups.length).toBeGreaterThanOrEqual(3)
  for (const g of groups) expect(models(g).length, g.source).toBeGreaterThan(0)
})

describe.each(groups)("$source", (group) => {
  const mountAt = (c: Container, dir: string) => c.mounts.find((m) => m.path === dir)
  const modelSocketDir = (c: Container) => c.env.RUTH_SOCKET_DIR ?? defaults.socketDir

  it("every container mounts one memory-backed volume at /dev/shm, a frame root of the runtime", () => {
    expect(defaults.frameRoots).toContain(FRAMES_DIR)
    const frames = new Set(group.containers.map((c) => mountAt(c, FRAMES_DIR)?.volume))
    expect(frames.size).toBe(1)
    const [volume] = frames
    expect(group.memoryVolumes.has(volume!), `${volume} is memory-backed`).toBe(true)
  })

  it("models only read frames (read-only mount)", () => {
    for (const c of models(group)) expect(mountAt(c, FRAMES_DIR)?.readOnly, c.name).toBe(true)
  })

  it("the models' socket dir is one shared volume, mounted at the same path in every container", () => {
    const dirs = new Set(models(group).map(modelSocketDir))
    expect(dirs.size).toBe(1)
    const dir = [...dirs][0]!
    expect(dir).toBe(defaults.socketDir)
    const volumes = new Set(group.containers.map((c) => mountAt(c, dir)?.volume))
    expect(volumes.size, `every container mounts the socket volume at ${dir}`).toBe(1)
    expect(group.volumes.has([...volumes][0]!)).toBe(true)
    for (const c of group.containers.filter((c) => c.env.RUTH_MODEL_ID === undefined)) {
      expect(c.env.RUTH_SOCKET_DIR ?? defaults.socketDir, `${c.name} looks for sockets there`).toBe(dir)
    }
  })

  it("heartbeats land on the shared volume, where the core can read them", () => {
    for (const c of models(group)) {
      const heartbeat = heartbeatPathFor(c.env.RUTH_HEARTBEAT_DIR ?? defaults.heartbeatDir, c.env.RUTH_MODEL_ID!)
      const shared = c.mounts.filter((m) => under(m.path, heartbeat))
      expect(shared.length, `${heartbeat} of ${c.name}`).toBeGreaterThan(0)
      expect(group.containers.every((other) => other.mounts.some((m) => m.volume === shared[0]!.volume))).toBe(true)
    }
  })

  it("every model is probed with `ruth-model health` on its socket path", () => {
    for (const c of models(group)) {
      const expected = HEALTH(socketPathFor(modelSocketDir(c), c.env.RUTH_MODEL_ID!))
      const probes = Object.keys(c.probes)
      expect(probes, c.name).toEqual(
        group.source === "compose.yaml" ? ["healthcheck"] : expect.arrayContaining(["readinessProbe", "livenessProbe"])
      )
      for (const probe of probes) expect(c.probes[probe], `${c.name} ${probe}`).toEqual(expected)
    }
  })

  it("serve commands serve the model named by RUTH_MODEL_ID from the default models dir", () => {
    for (const c of models(group).filter((c) => c.command.includes("serve"))) {
      const flag = (name: string) => c.command[c.command.indexOf(name) + 1]
      expect(flag("--model-id")).toBe(c.env.RUTH_MODEL_ID)
      expect(flag("--models-dir")).toBe(DEFAULT_MODELS_DIR)
    }
  })

  it("stops are given longer than the runtime's drain deadline", () => {
    for (const c of models(group)) {
      const drainMs = Number(c.env.RUTH_DRAIN_TIMEOUT_MS ?? defaults.drainTimeoutMs)
      expect(group.gracePeriodMs, c.name).toBeGreaterThan(drainMs)
    }
  })

  it("every model serves GET /metrics on a port it declares, reachable from outside it, and is marked for scraping", () => {
    const ports = models(group).map((c) => {
      const address = parseListenAddress(c.env.RUTH_METRICS_ADDR ?? "")
      expect(address, `${c.name} RUTH_METRICS_ADDR`).toBeDefined()
      expect(address!.host, c.name).toBe("0.0.0.0")
      expect(Object.values(c.ports), `${c.name} declares its metrics port`).toContain(address!.port)
      return address!.port
    })
    // A pod's containers share one network namespace: one port each.
    if (group.source !== "compose.yaml") expect(new Set(ports).size).toBe(ports.length)
    expect(group.scrape["prometheus.io/scrape"]).toBe("true")
    expect(ports).toContain(Number(group.scrape["prometheus.io/port"]))
  })

  it("every container has CPU and memory requests and limits", () => {
    for (const c of group.containers) {
      for (const kind of ["requests", "limits"] as const) {
        const r = c.resources[kind]
        expect(Object.keys(r), `${c.name} ${kind}`).toEqual(expect.arrayContaining(["memory"]))
        expect(r.cpu ?? r.cpus, `${c.name} ${kind} cpu`).toBeDefined()
      }
    }
  })

  it("runs as the image's non-root user, with images pinned to the package version", () => {
    for (const c of group.containers) {
      expect(c.user, c.name).toBe(imageUser)
      expect(c.image, c.name).toMatch(new RegExp(`^ruth-ai/[a-z0-9-]+:${version.replace(/\./g, "\\.")}$`))
    }
  })
})

it("deploy/kubernetes has a GPU variant asking for nvidia.com/gpu", () => {
  const gpu = kubernetesGroups().flatMap((g) => models(g)).filter((c) => c.resources.limits["nvidia.com/gpu"] !== undefined)
  expect(gpu.length).toBeGreaterThan(0)
  for (const c of gpu) {
    expect(Number(c.resources.limits["nvidia.com/gpu"])).toBeGreaterThanOrEqual(1)
    // extended resources cannot be overcommitted: a request, when given, equals the limit
    expect(c.resources.requests["nvidia.com/gpu"] ?? c.resources.limits["nvidia.com/gpu"]).toBe(c.resources.limits["nvidia.com/gpu"])
  }
})

it("deploy/kubernetes/ruth-ai.yaml: a Service and a ServiceMonitor scrape every model's metrics port by name", () => {
  const docs = parseAllDocuments(read("deploy/kubernetes/ruth-ai.yaml")).map((d) => d.toJS())
  const of = (kind: string) => docs.filter((d) => d.kind === kind)
  const [deployment] = of("Deployment")
  const [service] = of("Service")
  const [monitor] = of("ServiceMonitor")
  expect([deployment, service, monitor].every((d) => d !== undefined)).toBe(true)
  const podLabels = deployment.spec.template.metadata.labels
  for (const [k, v] of Object.entries(service.spec.selector)) expect(podLabels[k], `Service selects the pods by ${k}`).toBe(v)
  for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels)) expect(service.metadata.labels[k], `ServiceMonitor selects the Service by ${k}`).toBe(v)
  // Every model's named metrics port, behind a Service port the monitor scrapes.
  const modelPorts = (deployment.spec.template.spec.containers as Array<any>)
    .filter((c) => (c.env ?? []).some((e: any) => e.name === "RUTH_MODEL_ID"))
    .map((c) => {
      const port = parseListenAddress((c.env as Array<any>).find((e) => e.name === "RUTH_METRICS_ADDR").value)!.port
      return (c.ports as Array<any>).find((p) => p.containerPort === port).name as string
    })
  const servicePorts = (service.spec.ports as Array<any>).filter((p) => modelPorts.includes(p.targetPort)).map((p) => p.name)
  expect(servicePorts.length).toBe(modelPorts.length)
  expect((monitor.spec.endpoints as Array<any>).map((e) => e.port).sort()).toEqual([...servicePorts].sort())
  for (const e of monitor.spec.endpoints) expect(e.path).toBe("/metrics")
})
