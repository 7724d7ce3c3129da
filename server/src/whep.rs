//! WHEP and WHIP signalling (RFC 9725, draft-ietf-wish-whep): `POST /whep/{output}` (a viewer)
//! or `POST /whip/{input}` (a publisher) with an SDP offer is answered `201 Created` with the SDP
//! answer (every ICE candidate in it: no trickle) and a `Location` to `DELETE` to hang up.

use super::api::AppState;
use super::render::ApiError;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use streamlib::media::{OfferError, Role, MAX_OFFER_BYTES};

fn short(id: &str) -> String {
    id.chars().take(100).collect()
}

/// Answers a viewer's offer.
pub async fn whep_offer(
    State(s): State<AppState>,
    Path(output): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    offer(s, Role::Whep, output, headers, body).await
}

/// Answers a publisher's offer.
pub async fn whip_offer(
    State(s): State<AppState>,
    Path(input): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    offer(s, Role::Whip, input, headers, body).await
}

fn route(role: Role) -> (&'static str, &'static str) {
    match role {
        Role::Whep => ("whep", "output"),
        Role::Whip => ("whip", "input"),
    }
}

async fn offer(s: AppState, role: Role, id: String, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (base, what) = route(role);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.trim().to_ascii_lowercase().starts_with("application/sdp") {
        return Err(ApiError::new(415, format!("the offer must be application/sdp, not {content_type:?}")));
    }
    if body.len() > MAX_OFFER_BYTES {
        return Err(ApiError::new(413, format!("the offer is over the {MAX_OFFER_BYTES}-byte limit")));
    }
    let offer = String::from_utf8(body.to_vec()).map_err(|_| ApiError::new(400, "the offer is not UTF-8 text"))?;
    let endpoint = s
        .webrtc
        .get(role, &id)
        .ok_or_else(|| ApiError::new(404, format!("no {base} {what} {:?} in the scene", short(&id))))?;
    let answered = tokio::task::spawn_blocking(move || endpoint.answer(&offer))
        .await
        .map_err(|e| ApiError::new(500, format!("the negotiation stopped: {e}")))?;
    let (session, answer) = answered.map_err(|e: OfferError| {
        let mut error = ApiError::new(e.status(), e.to_string());
        if matches!(e, OfferError::BadOffer(_)) {
            error = ApiError::at(400, "body", e.to_string());
        }
        error
    })?;
    let location = format!("/{base}/{id}/{session}");
    let mut response = (StatusCode::CREATED, answer).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Ends a viewer's session.
pub async fn whep_hang_up(
    State(s): State<AppState>,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    hang_up(s, Role::Whep, ids).await
}

/// Ends a publisher's session.
pub async fn whip_hang_up(
    State(s): State<AppState>,
    Path(ids): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    hang_up(s, Role::Whip, ids).await
}

async fn hang_up(s: AppState, role: Role, (id, session): (String, String)) -> Result<StatusCode, ApiError> {
    let (base, what) = route(role);
    let endpoint =
        s.webrtc.get(role, &id).ok_or_else(|| ApiError::new(404, format!("no {base} {what} {:?}", short(&id))))?;
    match tokio::task::spawn_blocking(move || endpoint.hang_up(&session)).await {
        Ok(true) => Ok(StatusCode::OK),
        Ok(false) => Err(ApiError::new(404, "no such session (it ended already?)")),
        Err(e) => Err(ApiError::new(500, e.to_string())),
    }
}

/// ICE candidates are all in the answer; later ones (trickle, ICE restarts) are not taken.
pub async fn no_trickle() -> Response {
    let mut r = ApiError::new(405, "trickle ICE is not supported: every candidate is in the answer").into_response();
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("DELETE"));
    r
}

/// What a WHEP client may send here.
pub async fn options() -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("OPTIONS, POST"));
    r.headers_mut().insert("accept-post", HeaderValue::from_static("application/sdp"));
    r
}
