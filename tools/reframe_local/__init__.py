"""Local stand-ins for what the pipeline talks to in AWS: moto (made to enforce S3's limits), SeaweedFS,
the provider emulator, and Lambda's SQS poller. Used by `reframe demo`/`serve` and by the tests."""
