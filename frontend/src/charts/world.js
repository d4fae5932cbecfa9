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

/** "United States of America (US)", or "private / unknown" for "--", null and the like. */
export function countryLabel(code) {
  return isCountryCode(code) ? `${countryName(code)} (${code})` : `private / unknown${code ? ` (${code})` : ''}`;
}

// Rings that cross the antimeridian (Russia, Fiji) jump from +180 to -180 and would be drawn as
// lines across the whole map: move their western points past +180 instead.
function unwrap(ring) {
  if (!ring.some((p) => p[0] < -170) || !ring.some((p) => p[0] > 170)) return ring;
  return ring.map(([x, y]) => [x < 0 ? x + 360 : x, y]);
}

function fixGeometry(g) {
  if (g.type === 'Polygon') return { ...g, coordinates: g.coordinates.map(unwrap) };
  if (g.type === 'MultiPolygon') return { ...g, coordinates: g.coordinates.map((poly) => poly.map(unwrap)) };
  return g;
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
        if (!name || name === 'AQ' || !f.geometry) continue; // Antarctica: no traffic, and it would need its own projection fix
        features.push({ ...f, geometry: fixGeometry(f.geometry), properties: { name } });
      }
      echarts.registerMap('world', { type: 'FeatureCollection', features });
    });
  }
  return ready;
}
