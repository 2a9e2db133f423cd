import { configDefaults, defineConfig } from "vitest/config"

// Effect 4 branch: only the folders migrated so far (the rest still imports Effect 3 APIs).
export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["test/contract/**/*.test.ts", "test/config/**/*.test.ts", "test/frames/**/*.test.ts"],
    // Starts a container (test/support/harness.ts): runs once src/container is migrated.
    exclude: [...configDefaults.exclude, "test/frames/resources.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks"
  }
})
