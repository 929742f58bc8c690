import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      {
        // Each file boots real guests: one file at a time keeps the 2-core machine from timing out.
        test: { name: "boot", include: ["test/boot/**/*.test.ts"], testTimeout: 180_000, hookTimeout: 180_000, fileParallelism: false },
      },
    ],
  },
});
