//! Plugins that misbehave: gigantic output, a child left holding the
//! output pipe, bytes that are not text.
