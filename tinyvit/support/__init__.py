"""What every layer above the core leans on: files written atomically (`files`), one-line
progress displays (`progress`), errors that name a parameter, which the command line spells as
its flag (`errors`), and the one way to put another function in place of an operation for a
while (`substitute`). Imports only the standard library."""
