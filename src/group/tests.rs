//! State machine tests with a fake clock.
