import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The generated clients live in gen/ts at the repository root; `@gen` points there, and
// dedupe keeps one @bufbuild/protobuf for them and the app (its registry is per copy).
export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { "@gen": fileURLToPath(new URL("../../gen/ts", import.meta.url)) },
    dedupe: ["@bufbuild/protobuf"],
  },
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1024 },
  server: { port: 5173, strictPort: true },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
