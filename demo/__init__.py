"""The `make demo` package: a throwaway Redis, live BullMQ traffic and the dashboard on daphne."""
