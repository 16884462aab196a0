// The browser's side of the call: WebRTC to the Realtime service, status from the app.
// The page never sees the API key: it gets a short-lived client secret from the app.
"use strict";

const $ = (id) => document.getElementById(id);
const call = { id: null, pc: null, timer: null, events: 0 };

function setStatus(state, text) {
  const pill = $("status");
  pill.className = `pill ${state}`;
  pill.textContent = text || state;
}

async function startCall() {
  $("start").disabled = true;
  setStatus("connecting");
  try {
    // 1. A client secret bound to the agent's session, minted by the app.
    const session = await (await fetch("/session", { method: "POST" })).json();
    // 2. The call: microphone out, the agent's voice in, and the service's event channel.
    const pc = (call.pc = new RTCPeerConnection());
    const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    mic.getTracks().forEach((track) => pc.addTrack(track, mic));
    pc.ontrack = (event) => { $("remote").srcObject = event.streams[0]; };
    const channel = pc.createDataChannel("oai-events");
    channel.onmessage = () => { call.events += 1; };
    pc.onconnectionstatechange = () => { $("media").textContent = pc.connectionState; };
    await pc.setLocalDescription(await pc.createOffer());
    const answer = await fetch(session.calls_url, {
      method: "POST",
      body: pc.localDescription.sdp,
      headers: { Authorization: `Bearer ${session.token}`, "Content-Type": "application/sdp" },
    });
    if (answer.status !== 201) throw new Error(`the call was refused: ${await answer.text()}`);
    // The call id is the last part of the Location header.
    call.id = answer.headers.get("Location").split("/").pop();
    await pc.setRemoteDescription({ type: "answer", sdp: await answer.text() });
    $("call-id").textContent = call.id;
    $("media").textContent = pc.connectionState;
    // 3. The app attaches to the call and runs the tools.
    await fetch("/calls", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ call_id: call.id }),
    });
    $("hangup").disabled = false;
    call.timer = setInterval(refresh, 300);
  } catch (error) {
    $("error").textContent = String(error);
    setStatus("ended", "failed");
  }
}

async function refresh() {
  const status = await (await fetch(`/calls/${call.id}`)).json();
  const live = status.state === "live";
  setStatus(live ? "live" : status.state === "ended" ? "ended" : "connecting",
            live ? "in call" : status.state);
  $("text").disabled = $("send").disabled = !live;
  const log = $("log");
  while (log.children.length < status.log.length) {
    const line = status.log[log.children.length];
    const item = document.createElement("li");
    item.className = line.who;
    item.innerHTML = `<span class="who"></span>`;
    item.firstChild.textContent = line.who;
    item.append(line.text);
    log.append(item);
  }
  $("events").textContent = String(call.events);
  await showAudio();
  if (status.state === "ended") {
    clearInterval(call.timer);
    $("hangup").disabled = true;
    $("error").textContent = status.ended && status.ended.startsWith("failed") ? status.ended : "";
    if (call.pc) call.pc.close();
  }
}

async function showAudio() {
  // How much of the agent's voice has arrived, from the peer connection's own statistics.
  if (!call.pc) return;
  const stats = await call.pc.getStats();
  stats.forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "audio") {
      const seconds = (report.totalSamplesDuration || 0).toFixed(1);
      const energy = (report.totalAudioEnergy || 0).toFixed(3);
      $("heard").textContent = `${seconds} s, energy ${energy}`;
      call.heard = report.totalAudioEnergy || 0;
    }
  });
}

$("start").onclick = startCall;
$("hangup").onclick = () => fetch(`/calls/${call.id}/hangup`, { method: "POST" });
$("say").onsubmit = async (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  $("text").value = "";
  await fetch(`/calls/${call.id}/say`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text }),
  });
};
