import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// `npm run dev` proxies /ws, /login and /logout to a running aiot (default localhost:8080,
// override with AIOT_URL=http://host:port).
const target = process.env.AIOT_URL ?? 'http://localhost:8080'

export default defineConfig({
  plugins: [vue()],
  // Relative asset URLs: the page works wherever the Go server mounts it.
  base: './',
  build: {
    // dist/app/ is committed: `go run ./cmd/aiot` embeds it with no Node installed.
    // `task test` rebuilds it and fails when it differs from the sources.
    outDir: 'dist/app',
    emptyOutDir: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    port: 5173,
    proxy: {
      '/ws': { target, ws: true, changeOrigin: true },
      '/login': { target, changeOrigin: true },
      '/logout': { target, changeOrigin: true },
    },
  },
})
