//! Native tests, by concern: the specification's numbers
//! ([`otep235`]), head sampling of spans and logs ([`head`]), the config
//! ([`config`]), tail sampling on a fake hold ([`tail`]), and tail
//! sampling through the plugin's calls on the SDK's hold ([`session`]).

mod config;
mod head;
mod otep235;
mod session;
mod tail;
