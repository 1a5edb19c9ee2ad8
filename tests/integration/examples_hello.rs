//! The hello example runs and tells its story: the visitor says hello after
//! one simulated second, the greeter answers, the visitor leaves.

use crate::hello;

#[test]
fn the_greeter_and_the_visitor_exchange_a_hello() {
    assert_eq!(
        hello::run().unwrap(),
        [
            "t=1: visitor 2 says hello to 1",
            "t=1: greeter 1 hears \"hello\" from 2",
            "t=1: visitor 2 hears \"hello, visitor\" from 1 and leaves",
            "t=1: all quiet after 2 messages; still here: [AgentId(1)]",
        ]
    );
}

#[test]
fn the_example_runs() {
    hello::main().unwrap();
}
