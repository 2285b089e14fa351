// The play page: a person against the server's latest network, moves chosen by clicking.
"use strict";
let gameId = null;
let shown = 0;  // states drawn so far, exposed as body[data-shown] for automated tests

async function post(path, body) {
  const response = await fetch(path, {method: "POST", credentials: "same-origin",
                                      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function cell(row, text) { row.appendChild(document.createElement("td")).textContent = text; }

function addSearchRow(move, note) {
  const row = document.createElement("tr");
  row.className = note ? "hint" : "agent-move";
  cell(row, note ? `you (${note})` : `agent, player ${move.player}`);
  cell(row, move.label ? `${move.action} (${move.label})` : String(move.action));
  cell(row, move.value.map(v => v.toFixed(2)).join(", "));
  cell(row, move.policy.map((p, a) => p > 0 ? `${a}: ${p.toFixed(2)}` : null).filter(Boolean).join("  "));
  document.querySelector("#moves tbody").appendChild(row);
}

function show(state) {
  gameId = state.id;
  document.getElementById("render").textContent = state.render;
  document.getElementById("version").textContent = `network version ${state.version}`;
  const board = document.getElementById("board");
  board.style.gridTemplateColumns = `repeat(${state.columns}, auto)`;
  board.replaceChildren(...state.actions.map(action => {
    const button = document.createElement("button");
    button.textContent = action.label || String(action.action);
    button.dataset.action = action.action;
    button.disabled = !action.legal;
    button.addEventListener("click", () => move(action.action));
    return button;
  }));
  state.agent_moves.forEach(m => addSearchRow(m, null));
  if (state.hint && state.your_turn) addSearchRow(state.hint, "the agent's advice");
  const result = document.getElementById("result");
  if (state.terminal) {
    const totals = state.totals;
    const mine = totals[state.seat];
    const others = totals.filter((_, i) => i !== state.seat);
    const best = others.length ? Math.max(...others) : null;
    const verdict = best === null ? `you scored ${mine}` : mine > best ? "you win" : mine === best ? "draw" : "the agent wins";
    result.textContent = `Game over: ${verdict} (totals ${totals.join(", ")})`;
    result.dataset.over = "true";
  } else {
    result.textContent = state.your_turn ? "Your move: click a square." : "";
    result.dataset.over = "false";
  }
  shown += 1;
  document.body.dataset.shown = String(shown);
}

async function move(action) {
  document.getElementById("error").textContent = "";
  try { show(await post(`/api/v1/play/${gameId}`, {action})); }
  catch (error) { document.getElementById("error").textContent = error.message; }
}

async function newGame() {
  document.getElementById("error").textContent = "";
  document.querySelector("#moves tbody").replaceChildren();
  try { show(await post("/api/v1/play", {seat: +document.getElementById("seat").value})); }
  catch (error) { document.getElementById("error").textContent = error.message; }
}

async function start() {
  const stats = await (await fetch("/api/v1/stats", {credentials: "same-origin"})).json();
  document.title = `muzero: play ${stats.game}`;
  const select = document.getElementById("seat");
  const players = stats.players;
  select.replaceChildren(...Array.from({length: players}, (_, i) => {
    const option = document.createElement("option");
    option.value = i;
    option.textContent = i === 0 ? "0 (moves first)" : String(i);
    return option;
  }));
  document.getElementById("new-game").addEventListener("click", newGame);
  await newGame();
  document.body.dataset.ready = stats.game;
}

start();
