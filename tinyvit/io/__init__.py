"""What the library writes and says, below every other layer but the core: files written
atomically (`files`), one-line progress displays (`progress`) and errors that name a
parameter, which the command line spells as its flag (`errors`). Imports only the standard
library."""
