using System.Runtime.ExceptionServices;
using System.Text;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// The failed attempts of one request, for the error its caller gets when no attempt succeeded: which address failed
/// and how, a few of them at most. Made only once an attempt has failed.
/// </summary>
internal sealed class FailedAttempts
{
    private const int MaxListed = 5;
    private const int MaxMessageLength = 160;

    private readonly List<(string Address, string Reason, string Message)> _listed = new(2);

    public int Count { get; private set; }

    public Exception? LastError { get; private set; }

    public void Add(in AttemptResult result)
    {
        Count++;
        LastError = result.Error;
        if (_listed.Count < MaxListed)
        {
            var message = result.Error?.Message ?? string.Empty;
            if (message.Length > MaxMessageLength)
            {
                message = string.Concat(message.AsSpan(0, MaxMessageLength), "…");
            }

            _listed.Add((result.Endpoint.Endpoint.Address, result.Failure.Reason ?? "error", message));
        }
    }

    /// <summary>Lists the failures: <c>address reason (message); …</c>, at most five, then how many more.</summary>
    public string Describe()
    {
        var text = new StringBuilder();
        foreach (var (address, reason, message) in _listed)
        {
            if (text.Length > 0)
            {
                text.Append("; ");
            }

            text.Append(address).Append(' ').Append(reason);
            if (message.Length > 0)
            {
                text.Append(" (").Append(message).Append(')');
            }
        }

        if (Count > _listed.Count)
        {
            text.Append("; and ").Append(Count - _listed.Count).Append(" more");
        }

        return text.ToString();
    }

    /// <summary>
    /// Builds the exception for a request whose last attempt failed and will not be retried. One failed attempt is
    /// rethrown as it was, and so is the cancellation of an abandoned attempt; several become one <see cref="HttpRequestException"/> naming the service and each address's
    /// failure, with the last error's <see cref="HttpRequestError"/> and the last error as inner exception. A per-try
    /// timeout ends in a <see cref="TaskCanceledException"/> whose inner exception is a <see cref="TimeoutException"/>.
    /// </summary>
    public Exception Final(string service, in AttemptResult last)
    {
        var error = last.Error!;
        if (last.TimedOut)
        {
            var summary = Count > 1 ? $" All {Count} attempts failed: {Describe()}." : string.Empty;
            return new TaskCanceledException($"An attempt to service '{service}' exceeded its per-try timeout.{summary}", new TimeoutException(error.Message, error));
        }

        if (Count <= 1 || last.Failure.Outcome is null)
        {
            // One attempt, or the request was cancelled (caller, deadline): the error as it was.
            ExceptionDispatchInfo.Capture(error).Throw();
        }

        var kind = error is HttpRequestException http ? http.HttpRequestError : HttpRequestError.Unknown;
        return new HttpRequestException(kind, $"All {Count} attempts to service '{service}' failed: {Describe()}.", error);
    }
}
