using Lodestar.Discovery;

namespace Lodestar.Cli;

/// <summary>What one invocation of the CLI shares between its parts: the console and the secrets to keep out of it.</summary>
internal sealed class CliRun(CliConsole console)
{
    public CliConsole Console { get; } = console;

    /// <summary>Gets the redactor every message passes through before it is printed; configured secrets are added to it.</summary>
    public SecretRedactor Redactor { get; } = new();

    /// <summary>Gets or sets whether <c>--verbose</c> was given (stack traces of unexpected errors, Lodestar's own logs).</summary>
    public bool Verbose { get; set; }

    public string Redact(string text) => Redactor.Redact(text) ?? string.Empty;
}
