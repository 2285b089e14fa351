// The dashboard: polls the server's stats and training log, draws cards, clients and charts.
"use strict";
const LOSSES = ["value", "reward", "policy", "to_play"];
let entries = [];
let lastId = 0;

async function getJson(path) {
  const response = await fetch(path, {credentials: "same-origin"});
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function setText(id, text) { document.getElementById(id).textContent = text; }

function showStats(stats) {
  setText("game", stats.game);
  setText("version", stats.version);
  setText("step", `${stats.step} / ${stats.num_steps}`);
  setText("games", `${stats.games} / ${stats.num_games}`);
  setText("positions", stats.positions);
  setText("buffer", `${stats.buffer_games} games`);
  setText("batches", stats.batches_served);
  const body = document.querySelector("#clients tbody");
  body.replaceChildren(...stats.clients.map(client => {
    const row = document.createElement("tr");
    for (const value of [client.id, client.kind, `${client.seconds_ago} s ago`,
                         client.games_per_second.toFixed(1), client.batches_per_second.toFixed(1)]) {
      row.appendChild(document.createElement("td")).textContent = value;
    }
    return row;
  }));
}

function evaluationSeries(evaluations) {
  const series = new Map();
  const add = (name, x, y) => { if (!series.has(name)) series.set(name, []); series.get(name).push([x, y]); };
  for (const entry of evaluations) {
    const data = entry.data;
    if (data.returns) { add("mean return", entry.step, data.returns.mean); continue; }
    for (const [opponent, seats] of Object.entries(data.matches || {})) {
      seats.forEach((seat, index) => {
        const games = seat.wins + seat.draws + seat.losses;
        if (games) add(`${opponent} seat ${index}: not lost`, entry.step, (seat.wins + seat.draws) / games);
      });
    }
  }
  return [...series].map(([name, points]) => ({name, points}));
}

function draw(ingest) {
  const losses = entries.filter(e => e.kind === "losses");
  drawLineChart(document.getElementById("losses"), document.getElementById("losses-legend"),
                LOSSES.map(name => ({name, points: losses.filter(e => name in e.data).map(e => [e.step, e.data[name]])})),
                "training step");
  const evaluations = entries.filter(e => e.kind === "evaluation");
  const solo = evaluations.some(e => e.data.returns);
  setText("evaluation-caption", solo ? "Evaluation: mean episode return by training step"
                                     : "Evaluation: share of games not lost, by opponent and seat");
  drawLineChart(document.getElementById("evaluation"), document.getElementById("evaluation-legend"),
                evaluationSeries(evaluations), "training step");
  const start = ingest.length ? ingest[0].time : 0;
  drawLineChart(document.getElementById("ingest"), document.getElementById("ingest-legend"),
                [{name: "games", points: ingest.map(bin => [(bin.time - start) / 60, bin.games])}], "minutes since the first upload");
}

async function refresh() {
  try {
    const stats = await getJson("/api/v1/stats");
    let log;
    do {  // the log comes in pages: read them all, each once
      log = await getJson(`/api/v1/log?since=${lastId}`);
      entries = entries.concat(log.entries);
      if (log.entries.length) lastId = log.entries[log.entries.length - 1].id;
    } while (log.more);
    showStats(stats);
    draw(log.ingest);
    setText("status", `updated ${new Date().toLocaleTimeString()}`);
    document.body.dataset.loaded = "true";
  } catch (error) {
    setText("status", `cannot reach the server (${error.message})`);
  }
}

refresh();
setInterval(refresh, 2000);
