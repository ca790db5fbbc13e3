import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'

// Unit tests run in node; component tests (tests/components/) say
// `@vitest-environment happy-dom` at their top.

export default defineConfig({
  plugins: [vue()],
  test: {
    include: ['tests/**/*.test.ts'],
    environment: 'node',
    reporters: ['default', './tests/summary-reporter.ts'],
    benchmark: { include: ['bench/**/*.bench.ts'] },
  },
})
