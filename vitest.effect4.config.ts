import { defineConfig } from "vitest/config"

// Effect 4 branch: only the folders migrated so far (the rest still imports Effect 3 APIs).
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: [
      "test/contract/**/*.test.ts",
      "test/config/**/*.test.ts",
      "test/frames/**/*.test.ts",
      "test/ipc/**/*.test.ts",
      "test/container/**/*.test.ts",
      "test/inference/**/*.test.ts",
      "test/readme/**/*.test.ts"
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks"
  }
})
