namespace Lodestar.Cli;

/// <summary>A user or registry error: printed as one line without a stack trace, with <see cref="ExitCode"/> (2 by default).</summary>
internal sealed class CliException : Exception
{
    public CliException()
    {
    }

    public CliException(string message)
        : base(message)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Gets the process exit code: 2 for errors.</summary>
    public int ExitCode { get; init; } = CliApp.ErrorExitCode;
}
