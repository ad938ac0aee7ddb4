using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Lodestar.Testing;

/// <summary>Collects every log line (formatted message and exception text) so tests can assert on logs.</summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();

    /// <summary>Gets the entries written so far.</summary>
    public IReadOnlyCollection<LogEntry> Entries => _entries;

    /// <summary>Gets every message and exception text joined, for "never contains" assertions.</summary>
    public string AllText => string.Join("\n", _entries.Select(e => e.Message + " " + e.Exception));

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    /// <summary>One captured log entry.</summary>
    public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, string? Exception);

    private sealed class Logger(string category, ConcurrentQueue<LogEntry> entries) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => entries.Enqueue(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception?.ToString()));
    }
}
