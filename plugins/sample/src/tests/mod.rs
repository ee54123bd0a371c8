//! Native tests, by concern: the specification's numbers
//! ([`otep235`]), head sampling of spans and logs ([`head`]), the config
//! ([`config`]), and tail sampling on a fake hold ([`tail`]).

mod config;
mod head;
mod otep235;
mod tail;
