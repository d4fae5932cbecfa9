// Vite build of the capatlas SPA: static files in dist/, served by nginx under a strict CSP
// (script-src 'self', style-src 'self'), so nothing may be inlined as data: URLs or inline code.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 1000, // echarts core + the used charts; the total budget (500 KB gzipped) is checked by the browser test
  },
  server: { port: 5173, strictPort: false },
});
