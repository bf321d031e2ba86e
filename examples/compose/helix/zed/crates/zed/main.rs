fn main() {} // zed
