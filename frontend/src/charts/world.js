// World geometry for the Geo map, bundled (no tiles, works offline): world-atlas's 1:110m
// TopoJSON turned into GeoJSON with topojson-client, features named by ISO alpha-2 code
// (i18n-iso-countries maps the numeric ids; only the English names are registered).
import countries from 'i18n-iso-countries';
import en from 'i18n-iso-countries/langs/en.json';
import { echarts } from './ec.js';

countries.registerLocale(en);

export function countryName(code) {
  if (!code || typeof code !== 'string') return 'unknown';
  return countries.getName(code.toUpperCase(), 'en', { select: 'official' }) || code;
}

export function isCountryCode(code) {
  return typeof code === 'string' && /^[A-Z]{2}$/.test(code) && countries.isValid(code);
}

let ready = null;

/** Registers the map 'world' once; resolves when ECharts can draw it. */
export function loadWorld() {
  if (!ready) {
    ready = Promise.all([import('world-atlas/countries-110m.json'), import('topojson-client')]).then(([topo, tc]) => {
      const t = topo.default || topo;
      const geo = tc.feature(t, t.objects.countries);
      const features = [];
      for (const f of geo.features) {
        const a2 = f.id !== undefined ? countries.numericToAlpha2(String(f.id).padStart(3, '0')) : null;
        const name = a2 || (f.properties && f.properties.name === 'Kosovo' ? 'XK' : null);
        if (!name) continue;
        features.push({ ...f, properties: { name } });
      }
      echarts.registerMap('world', { type: 'FeatureCollection', features });
    });
  }
  return ready;
}
