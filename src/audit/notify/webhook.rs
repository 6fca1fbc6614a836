//! The generic webhook: one `POST` of the event itself per event.

use super::{Channel, Request};
use crate::audit::event::Event;

pub fn request(ch: &Channel, e: &Event) -> Result<Request, String> {
    Ok(Request {
        url: ch.url.clone().ok_or("a webhook channel needs `url`")?,
        body: serde_json::to_value(e).map_err(|e| e.to_string())?,
    })
}
