// Copies the dist files the CityOps pages import from the pinned npm packages into the Python
// package (src/cityops/web/static/vendor/), so the node serves them itself, and a wheel built
// after `make install` carries them: nothing is fetched from another host at run time.
import { copyFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, "..", "src", "cityops", "web", "static", "vendor");
const files = {
  "maplibre-gl/dist/maplibre-gl.mjs": "maplibre-gl.mjs",
  // MapLibre starts its workers from this file, found beside maplibre-gl.mjs.
  "maplibre-gl/dist/maplibre-gl-worker.mjs": "maplibre-gl-worker.mjs",
  "maplibre-gl/dist/maplibre-gl.css": "maplibre-gl.css",
  "maplibre-gl/LICENSE.txt": "maplibre-gl.LICENSE.txt",
  "uplot/dist/uPlot.esm.js": "uPlot.esm.js",
  "uplot/dist/uPlot.min.css": "uPlot.min.css",
  "uplot/LICENSE": "uPlot.LICENSE.txt",
  // Translations of every page (zh-CN and en): i18next and its browser language detector.
  "i18next/dist/esm/i18next.js": "i18next.mjs",
  "i18next/LICENSE": "i18next.LICENSE.txt",
  "i18next-browser-languagedetector/dist/esm/i18nextBrowserLanguageDetector.js":
    "i18next-browser-languagedetector.mjs",
  "i18next-browser-languagedetector/LICENSE": "i18next-browser-languagedetector.LICENSE.txt",
};
mkdirSync(target, { recursive: true });
for (const [from, to] of Object.entries(files)) {
  const source = join(here, "node_modules", from);
  if (!existsSync(source)) {
    console.error(`vendor.mjs: ${source} is missing; is the lock file up to date?`);
    process.exit(1);
  }
  copyFileSync(source, join(target, to));
}
console.log(`vendor.mjs: ${Object.keys(files).length} files copied to ${target}`);
