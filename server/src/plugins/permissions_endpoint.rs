//! `GET /permissions`.

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::Reply;
use crate::state::AppState;

pub async fn handle(_state: &AppState, _ctx: &Ctx) -> Result<Reply, ApiError> {
    Err(ApiError::unknown_url())
}
