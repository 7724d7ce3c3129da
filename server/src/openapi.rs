//! The OpenAPI 3 document served at `/openapi.json`.

use serde_json::{json, Value};

pub fn document() -> Value {
    let applied = json!({ "description": "applied at a frame boundary",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Applied" } } } });
    let errors = json!({
        "400": { "$ref": "#/components/responses/Error" }, "401": { "$ref": "#/components/responses/Error" },
        "403": { "$ref": "#/components/responses/Error" }, "404": { "$ref": "#/components/responses/Error" },
        "409": { "$ref": "#/components/responses/Error" }, "413": { "description": "body too large" },
        "422": { "$ref": "#/components/responses/Error" }, "503": { "$ref": "#/components/responses/Error" }
    });
    let with = |mut extra: Value| {
        if let (Some(map), Some(e)) = (extra.as_object_mut(), errors.as_object()) {
            for (k, v) in e {
                map.insert(k.clone(), v.clone());
            }
        }
        extra
    };
    let json_body = |description: &str| {
        json!({ "required": true, "description": description,
        "content": { "application/json": { "schema": { "type": "object" } } } })
    };
    let id = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }]);
    let at = json!({ "name": "at_pts_ns", "in": "query", "required": false,
        "description": "apply when the output reaches this pts (ns)", "schema": { "type": "integer", "minimum": 0 } });
    json!({
        "openapi": "3.0.3",
        "info": { "title": "streamlib render server", "version": env!("CARGO_PKG_VERSION"),
            "description": "Drive a running composition: scene updates are validated, then applied atomically at a frame boundary." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Applied": { "type": "object", "properties": {
                    "revision": { "type": "integer" }, "frame": { "type": "integer" } } },
                "Error": { "type": "object", "required": ["error"], "properties": {
                    "error": { "type": "string" }, "path": { "type": "string", "description": "JSON path at fault" } } }
            },
            "responses": { "Error": { "description": "rejected; the running scene is unchanged",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } } }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/scene": {
                "get": { "summary": "the running scene", "responses": { "200": { "description": "scene JSON; header x-streamlib-revision" }, "404": { "$ref": "#/components/responses/Error" } } },
                "put": { "summary": "replace the whole scene", "parameters": [at], "requestBody": json_body("a scene document"), "responses": with(json!({ "200": applied })) }
            },
            "/layers": { "post": { "summary": "add a layer", "requestBody": json_body("a layer"), "responses": with(json!({ "200": applied })) } },
            "/layers/{id}": {
                "patch": { "summary": "change a layer's fields (JSON merge patch: opacity, rect, z, visible, blend, text, ...)",
                    "parameters": [id[0], at], "requestBody": json_body("fields to change; null resets one"), "responses": with(json!({ "200": applied })) },
                "delete": { "summary": "remove a layer", "parameters": id, "responses": with(json!({ "200": applied })) }
            },
            "/inputs": { "post": { "summary": "add an input (`id` plus the input's fields)", "requestBody": json_body("an input"), "responses": with(json!({ "200": applied })) } },
            "/inputs/{id}": { "delete": { "summary": "remove an input", "parameters": id, "responses": with(json!({ "200": applied })) } },
            "/outputs": { "post": { "summary": "add an output (`id`, `kind`: file, hls, ...); paths are under the media root", "requestBody": json_body("an output"), "responses": with(json!({ "200": applied })) } },
            "/outputs/{id}": { "delete": { "summary": "stop and finish an output", "parameters": id, "responses": with(json!({ "200": applied })) } },
            "/snapshot.png": { "get": { "summary": "the current composited frame", "responses": { "200": { "description": "PNG", "content": { "image/png": {} } }, "409": { "$ref": "#/components/responses/Error" } } } },
            "/health": { "get": { "summary": "liveness (no token needed)", "security": [], "responses": { "200": { "description": "ok" } } } },
            "/stats/sync": { "get": { "summary": "the pacing clock's status, the sync mode and latency budget, the output's frames, fps, missed ticks, tick lateness and cross-input spread, the live inputs' feed states and per-input sync figures", "responses": { "200": { "description": "JSON" } } } },
            "/metrics": { "get": { "summary": "Prometheus text: fps, frames, drops per sink, stage times, queue depths, live inputs' state, latency and link counters, network outputs' counters", "responses": { "200": { "description": "text/plain" } } } },
            "/outputs/{id}/sdp": { "get": { "summary": "the SDP of an rtp output (application/sdp), for ffplay/VLC", "responses": { "200": { "description": "SDP" }, "404": { "description": "no such rtp output" } } } },
            "/whep/{output}": { "post": { "summary": "WHEP: an SDP offer (application/sdp, at most 64 KiB) for a whep output; answered with every ICE candidate (no trickle)", "responses": { "201": { "description": "the SDP answer; Location names the session" }, "400": { "description": "not an SDP offer, or no video in it" }, "404": { "description": "no such whep output" }, "406": { "description": "no codec in common (H.264 packetization mode 1, VP8)" }, "413": { "description": "offer too large" }, "415": { "description": "not application/sdp" }, "503": { "description": "the output has its max_viewers" } } } },
            "/whep/{output}/{session}": { "delete": { "summary": "hang up a WHEP viewer", "responses": { "200": { "description": "hung up" }, "404": { "description": "no such session" } } }, "patch": { "summary": "trickle ICE: not supported (405)" } },
            "/whip/{input}": { "post": { "summary": "WHIP: a publisher's SDP offer (application/sdp) for a whip input; a new offer replaces the session before it", "responses": { "201": { "description": "the SDP answer; Location names the session" }, "400": { "description": "not an SDP offer, or no video in it" }, "404": { "description": "no such whip input" }, "406": { "description": "no codec in common" } } } },
            "/whip/{input}/{session}": { "delete": { "summary": "hang up a WHIP publisher", "responses": { "200": { "description": "hung up" }, "404": { "description": "no such session" } } } },
            "/": { "get": { "summary": "the web control room (static page; it asks for the token)" } },
            "/events": { "get": { "summary": "server-sent events: stats (each second, with live inputs' state, link counters and metadata, and sinks' counters), input_state (a live input turned live, holding or stale), scene_applied, input_error (a frame failed, or a live link failed: with errors and message), input_recovered, output_error and output_recovered (a reconnecting output lost and regained its peer), input_ended, sink_error", "responses": { "200": { "description": "text/event-stream" } } } },
            "/media/{path}": { "get": { "summary": "files under the media root (HLS playlists and segments)", "parameters": [{ "name": "path", "in": "path", "required": true, "schema": { "type": "string" } }], "responses": { "200": { "description": "the file" }, "404": { "description": "no such file" } } } },
            "/openapi.json": { "get": { "summary": "this document", "responses": { "200": { "description": "OpenAPI 3" } } } }
        }
    })
}
