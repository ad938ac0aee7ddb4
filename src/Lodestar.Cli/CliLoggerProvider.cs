using Microsoft.Extensions.Logging;

namespace Lodestar.Cli;

/// <summary>Writes Lodestar's own log lines to the run's standard error, one line each, without secrets.</summary>
internal sealed class CliLoggerProvider(CliRun run) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(run, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CliRun run, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var text = $"{logLevel.ToString().ToLowerInvariant()}: {category}: {formatter(state, exception)}";
            if (exception is not null && run.Verbose)
            {
                text += " " + exception;
            }

            lock (run)
            {
                run.Console.Error.WriteLine(run.Redact(CliConsole.OneLine(text)));
            }
        }
    }
}
