import { defineConfig } from "vite";

// The UI is served by the node itself (crates/api/src/ui.rs): relative
// asset paths under /assets/, hashed, no source maps, no inline modules
// (the node's CSP allows scripts from 'self' only).
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: "es2020",
  },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/healthz": "http://127.0.0.1:8080" } },
});
