//! The `service` case's yardstick: the example's order books behind a bare
//! axum handler, with no agents — the same JSON in and out, the same
//! matching, each book behind a mutex. What the service costs beyond this
//! is the trip through the inlet, a partition and the endpoint.

use crate::cases::service::{Book, OrderRequest};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The books by symbol.
type Books = Arc<HashMap<String, Mutex<Book>>>;

/// `POST /orders`, matched in the handler.
pub fn router(symbols: &[&str]) -> Router {
    let books: Books =
        Arc::new(symbols.iter().map(|s| (s.to_string(), Mutex::new(Book::new()))).collect());
    Router::new().route("/orders", post(post_order)).with_state(books)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn post_order(State(books): State<Books>, body: Bytes) -> Response {
    let req: OrderRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid order: {e}")),
    };
    if req.qty == 0 || req.price == 0 {
        return error(StatusCode::BAD_REQUEST, "invalid order: price and qty must be > 0".into());
    }
    let Some(book) = books.get(&req.symbol) else {
        return error(StatusCode::NOT_FOUND, format!("unknown symbol {:?}", req.symbol));
    };
    let traded = book.lock().unwrap().trade(req.side, req.price, req.qty);
    Json(traded.ack(req.symbol)).into_response()
}
