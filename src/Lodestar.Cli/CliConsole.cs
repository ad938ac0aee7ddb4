namespace Lodestar.Cli;

/// <summary>
/// Where a CLI run reads and writes: standard output and error, whether they are terminals (colour and escape codes
/// only then), the environment and the working folder. Tests run the CLI in-process with writers of their own.
/// </summary>
internal sealed class CliConsole
{
    public CliConsole(TextWriter output, TextWriter error, bool outputIsTerminal, bool errorIsTerminal, Func<string, string?> environment, string workingDirectory)
    {
        Out = output;
        Error = error;
        Environment = environment;
        WorkingDirectory = workingDirectory;
        // https://no-color.org: any non-empty NO_COLOR turns colour off, whatever the terminal.
        var noColor = !string.IsNullOrEmpty(environment("NO_COLOR")) || string.Equals(environment("TERM"), "dumb", StringComparison.Ordinal);
        OutputColor = outputIsTerminal && !noColor;
        ErrorColor = errorIsTerminal && !noColor;
        OutputIsTerminal = outputIsTerminal;
    }

    /// <summary>Gets the process's own console.</summary>
    public static CliConsole System => new(
        Console.Out, Console.Error, !Console.IsOutputRedirected, !Console.IsErrorRedirected, global::System.Environment.GetEnvironmentVariable, Directory.GetCurrentDirectory());

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>Gets whether standard output is a terminal (live views, tables sized to it).</summary>
    public bool OutputIsTerminal { get; }

    /// <summary>Gets whether escape codes may go to standard output.</summary>
    public bool OutputColor { get; }

    /// <summary>Gets whether escape codes may go to standard error.</summary>
    public bool ErrorColor { get; }

    public Func<string, string?> Environment { get; }

    public string WorkingDirectory { get; }

    /// <summary>Writes one error line: <c>error: …</c>, the prefix in red on a terminal.</summary>
    public void WriteError(string message)
        => Error.WriteLine((ErrorColor ? "\u001b[31merror:\u001b[0m " : "error: ") + OneLine(message));

    /// <summary>Writes one warning line: <c>warning: …</c>, the prefix in yellow on a terminal.</summary>
    public void WriteWarning(string message)
        => Error.WriteLine((ErrorColor ? "\u001b[33mwarning:\u001b[0m " : "warning: ") + OneLine(message));

    /// <summary>Writes a note to standard error (progress, confirmations), leaving standard output to results.</summary>
    public void WriteNote(string message) => Error.WriteLine(OneLine(message));

    /// <summary>
    /// Returns <paramref name="text"/> on one line without control characters: registries put newlines in their error
    /// bodies, and an escape sequence from a hostile one must not reach the terminal.
    /// </summary>
    public static string OneLine(string text)
    {
        if (text.Contains('\n', StringComparison.Ordinal) || text.Contains('\r', StringComparison.Ordinal))
        {
            text = string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        return text.Any(char.IsControl) ? new string([.. text.Select(static c => c == '\t' ? ' ' : char.IsControl(c) ? '?' : c)]) : text;
    }
}
