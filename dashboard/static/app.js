// The dashboard page: prices table, candlestick chart and health, kept live by /api/live.
// Stored data comes from the JSON API; live ticks move the last price and the current candle
// until the stored aggregates (reloaded every few seconds) replace what the page built itself.
// The chart's candles (/api/candles) join the source's history to the pipeline's aggregates.
// The time axis places candles side by side: nights, weekends and holidays (no candles) take
// no room, as on market charts, while a short hole inside a session (GAP_SHOWN_MS at most of
// missing intraday candles, more than WEEKEND_DAYS missing days) is drawn as a gap.
"use strict";

const LWC = window.LightweightCharts;
const BAR_REFRESH_MS = 10000;
const LATEST_REFRESH_MS = 30000;
const HEALTH_REFRESH_MS = 5000;
const DAY_MS = 86400000;
const GAP_SHOWN_MS = 30 * 60000;
const WEEKEND_DAYS = 4;
const MAX_GAP_SLOTS = 120;

const state = {
  windows: [],
  windowMs: 60000,
  symbol: null,
  rangeMs: DAY_MS,
  custom: null, // {from, to} in ms, or null for "up to now"
  bars: [], // oldest first: {t, open, high, low, close, volume}
  rows: new Map(), // symbol -> {tr, price, ts, seq, dayOpen, dayOfOpen}
  source: null,
  loadSeq: 0,
};

const $ = (id) => document.getElementById(id);

// --- formatting -------------------------------------------------------------------------------

function fmtPrice(p) {
  if (p == null || !isFinite(p)) return "–";
  if (Math.abs(p) >= 1) {
    return p.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  return p.toPrecision(4);
}

function fmtTime(ms) {
  if (ms == null) return "–";
  return new Date(ms).toISOString().slice(11, 19);
}

function fmtChange(change, pct, price) {
  if (change == null) return "";
  const sign = change > 0 ? "+" : change < 0 ? "−" : "";
  // In the price's own precision: a $300 share moves by cents, a $0.05 token by less.
  const digits = Math.abs(price) >= 1 ? 2 : 6;
  const size = Math.abs(change).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: digits });
  return `${sign}${size} (${sign}${Math.abs(pct).toFixed(2)}%)`;
}

function fmtAge(seconds) {
  if (seconds == null) return "never";
  if (seconds < 90) return `${seconds.toFixed(1)} s ago`;
  if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min ago`;
  return `${(seconds / 3600).toFixed(1)} h ago`;
}

function fmtWindow(ms) {
  const found = state.windows.find((w) => w.ms === ms);
  return found ? found.label : `${ms} ms`;
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// --- the chart --------------------------------------------------------------------------------

const chart = LWC.createChart($("chart"), {
  autoSize: true,
  layout: { background: { color: "#171d24" }, textColor: "#c9d1d9" },
  grid: { vertLines: { color: "#222b35" }, horzLines: { color: "#222b35" } },
  rightPriceScale: { borderColor: "#27303a" },
  timeScale: { borderColor: "#27303a", timeVisible: true, secondsVisible: true },
  crosshair: { mode: 0 },
});
const candleSeries = chart.addSeries(LWC.CandlestickSeries, {
  upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
  wickUpColor: "#26a69a", wickDownColor: "#ef5350",
});
candleSeries.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.28 } });
const volumeSeries = chart.addSeries(LWC.HistogramSeries, {
  priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false,
  priceLineVisible: false,
});
volumeSeries.priceScale().applyOptions({ scaleMargins: { top: 0.78, bottom: 0 } });

function candle(bar) {
  return { time: bar.t / 1000, open: bar.open, high: bar.high, low: bar.low, close: bar.close };
}

function volumeBar(bar) {
  return {
    time: bar.t / 1000, value: bar.volume,
    color: bar.close >= bar.open ? "rgba(38,166,154,0.5)" : "rgba(239,83,80,0.5)",
  };
}

// Blank slots for the candles missing between a and b when the hole is a real gap (see top).
function gapSlots(a, b) {
  const step = state.windowMs;
  const missing = Math.round((b.t - a.t) / step) - 1;
  if (missing <= 0) return [];
  const shown = step >= DAY_MS ? missing > WEEKEND_DAYS : missing * step <= GAP_SHOWN_MS;
  if (!shown) return [];
  const slots = [];
  for (let i = 1; i <= Math.min(missing, MAX_GAP_SLOTS); i++) slots.push({ time: (a.t + i * step) / 1000 });
  return slots;
}

function drawAll() {
  const candles = [];
  const volumes = [];
  state.bars.forEach((bar, i) => {
    if (i > 0) {
      const blanks = gapSlots(state.bars[i - 1], bar);
      candles.push(...blanks);
      volumes.push(...blanks);
    }
    candles.push(candle(bar));
    volumes.push(volumeBar(bar));
  });
  candleSeries.setData(candles);
  volumeSeries.setData(volumes);
  $("chart").dataset.candles = String(state.bars.length);
  $("chart").dataset.historyCandles = String(state.bars.filter((b) => b.history).length);
}

function isLive() {
  return state.custom === null;
}

// A tick of the charted symbol: extend the current window's candle, or open the next one.
function applyTick(ts, price, volume) {
  if (!isLive()) return;
  const start = Math.floor(ts / state.windowMs) * state.windowMs;
  const bars = state.bars;
  const last = bars[bars.length - 1];
  if (last && start < last.t) return; // a late tick: the stored aggregate will count it
  let bar;
  if (last && start === last.t) {
    bar = last;
    bar.high = Math.max(bar.high, price);
    bar.low = Math.min(bar.low, price);
    bar.close = price;
    bar.volume += volume;
  } else {
    bar = { t: start, open: price, high: price, low: price, close: price, volume, live: true };
    bars.push(bar);
  }
  candleSeries.update(candle(bar));
  volumeSeries.update(volumeBar(bar));
  $("chart").dataset.candles = String(bars.length);
}

function range() {
  if (state.custom) return state.custom;
  // Include the window in progress (the API takes times up to a day ahead, so an hour at most).
  const to = Date.now() + Math.min(state.windowMs, 3600000);
  return { from: to - state.rangeMs - state.windowMs, to };
}

async function loadBars(fit) {
  if (!state.symbol) return;
  const seq = ++state.loadSeq;
  const { from, to } = range();
  const q = new URLSearchParams({ symbol: state.symbol, window: String(state.windowMs), from, to });
  let body;
  try {
    body = await getJSON(`/api/candles?${q}`);
  } catch (e) {
    $("chart-note").textContent = `Bars not loaded: ${e.message}`;
    return;
  }
  if (seq !== state.loadSeq) return; // a newer request (another symbol or window) took over
  const stored = body.candles;
  const lastStored = stored.length ? stored[stored.length - 1].t : -Infinity;
  // Candles the page built from live ticks after the newest stored one stay until stored.
  const liveAfter = state.bars.filter((b) => b.live && b.t > lastStored);
  state.bars = stored.concat(liveAfter);
  if (fit && isLive()) await seedFromTicks(lastStored, seq);
  if (seq !== state.loadSeq) return;
  drawAll();
  $("chart").dataset.storedCandles = String(stored.length);
  const history = stored.filter((b) => b.history).length;
  const what = `${stored.length} stored ${fmtWindow(state.windowMs)} candles of ${state.symbol}`;
  const whence = history ? ` (${history} from the source's history)` : "";
  $("chart-note").textContent = stored.length
    ? `${what}${whence}; the last candle moves with each tick.`
    : `${what} in this range yet (the processor writes a window once it closes); live ticks draw the current candle.`;
  if (fit) chart.timeScale().fitContent();
}

// The current window has no stored aggregate yet: build it from the stored ticks, so that its
// open, high and low are right from the first moment rather than from when the page opened.
async function seedFromTicks(lastStored, seq) {
  let body;
  try {
    body = await getJSON(`/api/ticks?${new URLSearchParams({ symbol: state.symbol, last: "1000" })}`);
  } catch (e) {
    return;
  }
  if (seq !== state.loadSeq) return;
  state.bars = state.bars.filter((b) => !b.live);
  const minStart = lastStored + state.windowMs;
  for (const t of body.ticks.slice().reverse()) {
    if (Math.floor(t.ts / state.windowMs) * state.windowMs >= minStart) {
      applyTickQuiet(t.ts, t.price, t.volume);
    }
  }
}

function applyTickQuiet(ts, price, volume) {
  const start = Math.floor(ts / state.windowMs) * state.windowMs;
  const last = state.bars[state.bars.length - 1];
  if (last && start < last.t) return;
  if (last && start === last.t) {
    last.high = Math.max(last.high, price);
    last.low = Math.min(last.low, price);
    last.close = price;
    last.volume += volume;
  } else {
    state.bars.push({ t: start, open: price, high: price, low: price, close: price, volume, live: true });
  }
}

// --- the prices table --------------------------------------------------------------------------

function rowFor(symbol) {
  let row = state.rows.get(symbol);
  if (row) return row;
  const tr = document.createElement("tr");
  tr.dataset.symbol = symbol;
  tr.innerHTML = `<td class="sym"></td><td class="num price"></td><td class="num change"></td><td class="num time"></td>`;
  tr.querySelector(".sym").textContent = symbol;
  tr.querySelector(".price").id = `price-${symbol}`;
  tr.addEventListener("click", () => selectSymbol(symbol));
  row = { tr, price: null, ts: null, seq: null, dayOpen: null, dayOfOpen: null };
  state.rows.set(symbol, row);
  const body = $("prices").tBodies[0];
  const after = [...body.rows].find((r) => r.dataset.symbol > symbol);
  body.insertBefore(tr, after || null);
  addSymbolOption(symbol);
  return row;
}

function renderRow(symbol, row, direction) {
  const price = row.tr.querySelector(".price");
  price.textContent = fmtPrice(row.price);
  price.dataset.ts = String(row.ts);
  price.dataset.price = String(row.price);
  const change = row.tr.querySelector(".change");
  const sameDay = row.dayOpen != null && Math.floor(row.ts / DAY_MS) === row.dayOfOpen;
  const diff = sameDay ? row.price - row.dayOpen : null;
  change.textContent = sameDay ? fmtChange(diff, (diff / row.dayOpen) * 100, row.price) : "";
  change.className = `num change ${diff > 0 ? "up" : diff < 0 ? "down" : ""}`;
  row.tr.querySelector(".time").textContent = fmtTime(row.ts);
  if (direction) {
    // The Web Animations API restarts the flash without forcing a layout per update.
    const colour = direction > 0 ? "rgba(38,166,154,.35)" : "rgba(239,83,80,.35)";
    price.animate([{ background: colour }, { background: "transparent" }], { duration: 800 });
  }
  if (symbol === state.symbol) renderQuote(row, diff);
}

function renderQuote(row, diff) {
  $("quote-symbol").textContent = state.symbol;
  $("quote-price").textContent = fmtPrice(row.price);
  $("quote-price").dataset.ts = String(row.ts);
  const change = $("quote-change");
  change.textContent = diff == null ? "" : fmtChange(diff, (diff / row.dayOpen) * 100, row.price);
  change.className = diff > 0 ? "up" : diff < 0 ? "down" : "";
  $("quote-time").textContent = `${fmtTime(row.ts)} UTC`;
}

// Rows changed since the last frame, drawn once per frame however many ticks arrive.
const dirty = new Map();
let frameQueued = false;

function updatePrice(symbol, price, ts, seq) {
  const row = rowFor(symbol);
  if (row.ts !== null && (ts < row.ts || (ts === row.ts && seq <= row.seq))) return;
  const before = dirty.has(symbol) ? dirty.get(symbol) : row.price;
  dirty.set(symbol, before);
  row.price = price;
  row.ts = ts;
  row.seq = seq;
  if (!frameQueued) {
    frameQueued = true;
    requestAnimationFrame(drawDirty);
  }
}

function drawDirty() {
  frameQueued = false;
  for (const [symbol, before] of dirty) {
    const row = state.rows.get(symbol);
    renderRow(symbol, row, before === null ? 0 : Math.sign(row.price - before));
  }
  dirty.clear();
}

async function loadLatest() {
  let body;
  try {
    body = await getJSON("/api/latest");
  } catch (e) {
    $("prices-note").textContent = `Prices not loaded: ${e.message}`;
    return;
  }
  for (const p of body.prices) {
    const row = rowFor(p.symbol);
    if (p.day_open != null) {
      row.dayOpen = p.day_open;
      row.dayOfOpen = Math.floor(p.ts / DAY_MS);
    }
    updatePrice(p.symbol, p.price, p.ts, p.seq);
    renderRow(p.symbol, row, 0);
  }
  $("prices-note").textContent = body.prices.length
    ? "Change is since the first tick of the UTC day."
    : "No prices stored yet.";
  if (!state.symbol && body.prices.length) {
    const wanted = new URLSearchParams(location.search).get("symbol");
    const symbols = body.prices.map((p) => p.symbol);
    selectSymbol(symbols.includes(wanted) ? wanted : symbols.includes("AAPL") ? "AAPL" : symbols[0]);
  }
}

// --- controls ------------------------------------------------------------------------------------

function addSymbolOption(symbol) {
  const select = $("symbol");
  if ([...select.options].some((o) => o.value === symbol)) return;
  const option = new Option(symbol, symbol);
  const after = [...select.options].find((o) => o.value > symbol);
  select.add(option, after || null);
}

function selectSymbol(symbol) {
  if (symbol === state.symbol) return;
  state.symbol = symbol;
  state.bars = [];
  drawAll();
  addSymbolOption(symbol);
  $("symbol").value = symbol;
  for (const [s, row] of state.rows) row.tr.classList.toggle("selected", s === symbol);
  const row = state.rows.get(symbol);
  if (row && row.price !== null) renderRow(symbol, row, 0);
  remember();
  connect();
  loadBars(true);
}

function remember() {
  const q = new URLSearchParams({ symbol: state.symbol, window: fmtWindow(state.windowMs) });
  history.replaceState(null, "", `?${q}`);
}

function toLocalInput(ms) {
  return new Date(ms).toISOString().slice(0, 19);
}

function showTimes() {
  chart.applyOptions({
    timeScale: { timeVisible: state.windowMs < DAY_MS, secondsVisible: state.windowMs < 60000 },
  });
}

// A range of days asks for coarser candles: 5-minute ones for days, daily ones for months.
function fitWindow() {
  const sizes = state.windows.map((w) => w.ms);
  let wanted = state.windowMs;
  if (state.rangeMs > 7 * DAY_MS) wanted = DAY_MS;
  else if (state.rangeMs > DAY_MS) wanted = sizes.includes(300000) ? 300000 : 60000;
  else if (state.windowMs >= DAY_MS) wanted = sizes.includes(60000) ? 60000 : sizes[0];
  if (wanted === state.windowMs) return;
  state.windowMs = wanted;
  $("window").value = String(wanted);
  showTimes();
  remember();
}

function setupControls(config) {
  state.windows = (config.chart_windows || config.windows).slice();
  const wanted = new URLSearchParams(location.search).get("window");
  const match = config.windows.find((w) => w.label === wanted);
  state.windowMs = match ? match.ms : config.default_window_ms;
  for (const w of state.windows) $("window").add(new Option(w.label, String(w.ms)));
  $("window").value = String(state.windowMs);
  $("window").addEventListener("change", () => {
    state.windowMs = Number($("window").value);
    showTimes();
    state.bars = [];
    remember();
    loadBars(true);
  });
  showTimes();
  $("symbol").addEventListener("change", () => selectSymbol($("symbol").value));
  $("range").addEventListener("change", () => {
    const value = $("range").value;
    $("custom-range").hidden = value !== "custom";
    if (value === "custom") {
      const to = Date.now();
      $("from").value = toLocalInput(to - state.rangeMs);
      $("to").value = toLocalInput(to);
      return;
    }
    state.rangeMs = Number(value);
    state.custom = null;
    fitWindow();
    state.bars = [];
    loadBars(true);
  });
  $("apply").addEventListener("click", () => {
    const from = Date.parse(`${$("from").value}Z`);
    const to = Date.parse(`${$("to").value}Z`);
    if (!(from < to)) {
      $("chart-note").textContent = "Pick a start before the end.";
      return;
    }
    state.custom = { from, to };
    state.bars = [];
    loadBars(true);
  });
}

// --- live ----------------------------------------------------------------------------------------

function connect() {
  if (state.source) state.source.close();
  const url = state.symbol ? `/api/live?symbol=${encodeURIComponent(state.symbol)}` : "/api/live";
  const source = new EventSource(url);
  state.source = source;
  source.addEventListener("hello", () => setConn(true));
  source.addEventListener("prices", (event) => {
    const data = JSON.parse(event.data);
    for (const [symbol, price, ts, seq] of data.latest) updatePrice(symbol, price, ts, seq);
    if (data.symbol === state.symbol && data.ticks) {
      for (const [ts, price, volume] of data.ticks) applyTick(ts, price, volume);
    }
  });
  source.onerror = () => setConn(false); // EventSource reconnects by itself
}

function setConn(up) {
  const badge = $("conn");
  badge.textContent = up ? "live" : "reconnecting…";
  badge.className = `badge ${up ? "ok" : "off"}`;
}

// --- health --------------------------------------------------------------------------------------

async function loadHealth() {
  let body;
  try {
    body = await getJSON("/api/health");
  } catch (e) {
    $("health-status").textContent = "unreachable";
    $("health-status").className = "badge off";
    return;
  }
  $("health-status").textContent = body.status;
  $("health-status").className = `badge ${body.status === "ok" ? "ok" : "off"}`;
  const k = body.kafka;
  const items = [
    ["Cassandra", body.cassandra.ok ? `up (${body.cassandra.version})` : body.cassandra.error],
    ["Kafka", k.ok ? "up" : k.error],
  ];
  if (k.ok) {
    items.push(["Dead letters, last hour", String(k.dead_letters_last_hour)]);
    items.push(["Newest tick", fmtAge(k.topics.ticks.newest_age_s)]);
    items.push(["Newest aggregate (processor)", fmtAge(k.topics.aggregates.newest_age_s)]);
  }
  items.push(["Live pages", String(body.live.clients)]);
  const dl = $("health-summary");
  dl.replaceChildren();
  for (const [name, value] of items) {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (name === "Dead letters, last hour") dd.id = "dead-letters";
    dl.append(dt, dd);
  }
  showFleet(body.fleet);
  const body2 = $("lag").tBodies[0];
  body2.replaceChildren();
  for (const lag of k.ok ? k.lag : []) {
    const tr = body2.insertRow();
    for (const [value, cls] of [[lag.stage, ""], [lag.group, "muted"], [lag.topic, ""], [String(lag.lag), "num"]]) {
      const td = tr.insertCell();
      td.textContent = value;
      if (cls) td.className = cls;
    }
  }
}

// The producers' fleet (null when the dashboard has no ZooKeeper): who holds which symbol.
function showFleet(fleet) {
  const box = $("fleet");
  box.hidden = fleet === null || fleet === undefined;
  if (box.hidden) return;
  if (!fleet.ok) {
    $("fleet-members").textContent = fleet.error;
    $("fleet-symbols").tBodies[0].replaceChildren();
    return;
  }
  const names = fleet.members.map((m) => `${m.name} (${m.host}, pid ${m.pid})`);
  $("fleet-members").textContent = `${fleet.members.length} running: ${names.join(", ")}` +
    (fleet.list_error ? `; the symbol list is malformed: ${fleet.list_error}` : "");
  const rows = $("fleet-symbols").tBodies[0];
  rows.replaceChildren();
  for (const s of fleet.symbols) {
    const tr = rows.insertRow();
    const since = s.since_ms ? `${new Date(s.since_ms).toISOString().slice(11, 19)} UTC` : "-";
    for (const value of [s.symbol, s.member || "nobody", since]) tr.insertCell().textContent = value;
  }
  const moves = fleet.handovers.map(
    (h) => `${h.symbol} to ${h.to} at ${new Date(h.at_ms).toISOString().slice(11, 19)}`);
  $("fleet-handovers").textContent = moves.length ? moves.join("; ") : "none";
}

// --- start ---------------------------------------------------------------------------------------

function tickClock() {
  $("clock").textContent = `${new Date().toISOString().slice(11, 19)} UTC`;
}

async function start() {
  tickClock();
  setInterval(tickClock, 1000);
  try {
    setupControls(await getJSON("/api/config"));
  } catch (e) {
    $("chart-note").textContent = `Dashboard not reachable: ${e.message}`;
  }
  const wanted = new URLSearchParams(location.search).get("symbol");
  if (wanted) selectSymbol(wanted.toUpperCase());
  else connect();
  await loadLatest();
  loadHealth();
  // Coarse candles change slowly, and each reload of them reads days of minutes.
  const refresh = () => {
    loadBars(false);
    setTimeout(refresh, state.windowMs >= 300000 ? 3 * BAR_REFRESH_MS : BAR_REFRESH_MS);
  };
  setTimeout(refresh, BAR_REFRESH_MS);
  setInterval(loadLatest, LATEST_REFRESH_MS);
  setInterval(loadHealth, HEALTH_REFRESH_MS);
  document.body.dataset.ready = "1";
}

start();
