using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Grpc.Net.Client.Balancer;
using Lodestar.Http;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// Sits in an <c>xds:///</c> channel's handler chain, below grpc-dotnet's balancer handler, and applies what the call's
/// route says once the picker has chosen its cluster and endpoint: the call's <c>grpc-status</c> becomes the endpoint's
/// outcome, the route's <c>max_stream_duration</c> caps the call's deadline (gRFC A31) and its retry policy retries a
/// failed call on the same cluster (gRFC A44).
/// </summary>
/// <remarks>
/// <para>
/// grpc-dotnet applies a retry policy only from the channel options' service config, read once when the channel is
/// made, and with exact method names; xDS routes arrive later, change at run time and match by prefix, headers and
/// fractions. So the retries happen here, per call, from the route the picker matched. A call is retried only while
/// nothing of its response has been read: its response is Trailers-Only (the status in the headers, no message) with a
/// status the policy names, and its request is a single message (unary and server-streaming calls: grpc-dotnet writes
/// the message again when the request is sent again). Client- and duplex-streaming calls are not retried here, as the
/// request messages are not buffered.
/// </para>
/// <para>
/// The deadline: when the route's cap is shorter than the call's own deadline (or the call has none), the
/// <c>grpc-timeout</c> header sent is lowered to it, so the server ends the call with <c>DEADLINE_EXCEEDED</c> when it
/// passes; and if no response headers arrive by then, the handler stops the attempt and answers
/// <c>DEADLINE_EXCEEDED</c> itself. The cap counts from when the call reaches this handler and spans its retries.
/// </para>
/// </remarks>
internal sealed partial class XdsCallHandler : DelegatingHandler
{
    /// <summary>The status of a call whose deadline passed, <c>DEADLINE_EXCEEDED</c>.</summary>
    internal const int DeadlineExceeded = 4;

    // The option names grpc-dotnet's BalancerHttpHandler sets and its connect callback reads.
    private static readonly HttpRequestOptionsKey<Subchannel> s_subchannelKey = new("Subchannel");
    private static readonly HttpRequestOptionsKey<BalancerAddress> s_currentAddressKey = new("CurrentAddress");
    private static readonly MediaTypeHeaderValue s_grpcContentType = new("application/grpc");

    private readonly Func<GrpcStatusOptions> _grpc;
    private readonly TimeProvider _timeProvider;
    private readonly Func<double> _random;
    private readonly ILogger _logger;

    public XdsCallHandler(HttpMessageHandler inner, Func<GrpcStatusOptions> grpc, TimeProvider timeProvider, Func<double> random, ILogger logger)
        : base(inner)
    {
        _grpc = grpc;
        _timeProvider = timeProvider;
        _random = random;
        _logger = logger;
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!request.Options.TryGetValue(XdsCallTracker.Key, out var tracker))
        {
            return base.SendAsync(request, cancellationToken);
        }

        TimeSpan? cap = null;
        if (tracker.Route?.MaxStreamDuration is { } max && (!GrpcTimeout.TryRead(request, out var own) || max < own))
        {
            cap = max;
        }

        return cap is null && tracker.Route?.Retry is null
            ? SendObservedAsync(request, tracker, cancellationToken)
            : SendRoutedAsync(request, tracker, cap, cancellationToken);
    }

    private async Task<HttpResponseMessage> SendObservedAsync(HttpRequestMessage request, XdsCallTracker tracker, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        tracker.Observe(response, _grpc());
        return response;
    }

    private async Task<HttpResponseMessage> SendRoutedAsync(HttpRequestMessage request, XdsCallTracker tracker, TimeSpan? cap, CancellationToken cancellationToken)
    {
        var grpc = _grpc();
        var retry = tracker.Route?.Retry;
        var replayable = retry is not null && IsSingleMessage(request);
        var started = _timeProvider.GetTimestamp();
        using var deadline = cap is { } duration ? new CancellationTokenSource(duration, _timeProvider) : null;
        using var linked = deadline is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var token = linked?.Token ?? cancellationToken;
        for (var attempt = 1; ; attempt++)
        {
            if (cap is { } total)
            {
                GrpcTimeout.Write(request, total - _timeProvider.GetElapsedTime(started));
            }

            HttpResponseMessage response;
            try
            {
                response = await base.SendAsync(request, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException ex) when (deadline is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
            {
                tracker.Fail(ex);
                Log.DeadlineExceeded(_logger, request.RequestUri?.AbsolutePath ?? "/", cap!.Value.TotalMilliseconds);
                return DeadlineResponse(request, cap.Value);
            }

            tracker.Observe(response, grpc);
            if (!replayable || attempt >= retry!.MaxAttempts || ReadHeaderStatus(response) is not { } status || !retry.Statuses.Contains(status)
                || ReadPushback(response, attempt, retry) is not { } delay)
            {
                return response;
            }

            try
            {
                await Task.Delay(delay, _timeProvider, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                response.Dispose();
                Log.DeadlineExceeded(_logger, request.RequestUri?.AbsolutePath ?? "/", cap!.Value.TotalMilliseconds);
                return DeadlineResponse(request, cap.Value);
            }
            catch (OperationCanceledException)
            {
                return response; // The caller gave up: it sees the last answer, if it still looks.
            }

            if (!tracker.TryStartRetry(out var subchannel, out var address))
            {
                return response;
            }

            response.Dispose();
            Log.Retrying(_logger, request.RequestUri?.AbsolutePath ?? "/", attempt, status, address.EndPoint.ToString());

            // Sent again through the new endpoint's subchannel, as grpc-dotnet's balancer handler does after a pick.
            request.Options.Set(s_subchannelKey, subchannel);
            request.Options.Set(s_currentAddressKey, address);
            if (request.RequestUri is { } uri)
            {
                request.RequestUri = new UriBuilder(uri) { Host = address.EndPoint.Host, Port = address.EndPoint.Port }.Uri;
            }

            request.Headers.Remove("grpc-previous-rpc-attempts");
            request.Headers.TryAddWithoutValidation("grpc-previous-rpc-attempts", attempt.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>The delay before the next attempt: the server's pushback when it sent one (a negative one stops the retries), else the policy's backoff.</summary>
    private TimeSpan? ReadPushback(HttpResponseMessage response, int attempt, XdsGrpcRetryPolicy retry)
    {
        if (!response.Headers.NonValidated.TryGetValues("grpc-retry-pushback-ms", out var values))
        {
            return retry.Backoff(attempt, _random);
        }

        foreach (var value in values)
        {
            return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? TimeSpan.FromMilliseconds(ms) : null;
        }

        return null;
    }

    /// <summary>Reads the status of a Trailers-Only response (<c>grpc-status</c> in the headers), else <see langword="null"/>.</summary>
    private static int? ReadHeaderStatus(HttpResponseMessage response)
    {
        if (response.StatusCode != HttpStatusCode.OK || !response.Headers.NonValidated.TryGetValues("grpc-status", out var values))
        {
            return null;
        }

        foreach (var value in values)
        {
            return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var status) ? status : null;
        }

        return null;
    }

    /// <summary>
    /// Whether the request holds one message grpc-dotnet writes again when sent again (its unary content, used by unary
    /// and server-streaming calls); a streaming request's messages are written once, as the caller sends them.
    /// </summary>
    private static bool IsSingleMessage(HttpRequestMessage request)
        => request.Content?.GetType().Name.StartsWith("PushUnaryContent", StringComparison.Ordinal) == true;

    private static partial class Log
    {
        [LoggerMessage(64, LogLevel.Debug, "xDS channel call {Path}: attempt {Attempt} answered status {Status}; retrying on {Endpoint}.", EventName = "XdsChannelRetrying")]
        public static partial void Retrying(ILogger logger, string path, int attempt, int status, string endpoint);

        [LoggerMessage(65, LogLevel.Debug, "xDS channel call {Path}: no response within the route's cap of {CapMilliseconds} ms; the call fails DEADLINE_EXCEEDED.", EventName = "XdsChannelDeadlineExceeded")]
        public static partial void DeadlineExceeded(ILogger logger, string path, double capMilliseconds);
    }

    private static HttpResponseMessage DeadlineResponse(HttpRequestMessage request, TimeSpan cap)
    {
        // A Trailers-Only answer, as a server gives when a call's deadline passes.
        var response = new HttpResponseMessage(HttpStatusCode.OK)
        {
            RequestMessage = request,
            Version = HttpVersion.Version20,
            Content = new ByteArrayContent([]),
        };
        response.Content.Headers.ContentType = s_grpcContentType;
        response.Headers.TryAddWithoutValidation("grpc-status", DeadlineExceeded.ToString(CultureInfo.InvariantCulture));
        response.Headers.TryAddWithoutValidation("grpc-message", Uri.EscapeDataString(
            $"Deadline exceeded: the xDS route caps the call at {cap.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms (max_stream_duration)."));
        return response;
    }
}

/// <summary>Reads and writes gRPC's <c>grpc-timeout</c> request header (a value of at most 8 digits and a unit).</summary>
internal static class GrpcTimeout
{
    private const string Header = "grpc-timeout";
    private const long MaxValue = 99_999_999;

    /// <summary>Reads the call's timeout from its <c>grpc-timeout</c> header.</summary>
    public static bool TryRead(HttpRequestMessage request, out TimeSpan timeout)
    {
        timeout = default;
        if (!request.Headers.NonValidated.TryGetValues(Header, out var values))
        {
            return false;
        }

        foreach (var value in values)
        {
            return TryParse(value, out timeout);
        }

        return false;
    }

    /// <summary>Parses a <c>grpc-timeout</c> value such as <c>200m</c> or <c>5S</c>.</summary>
    public static bool TryParse(string value, out TimeSpan timeout)
    {
        timeout = default;
        if (value.Length < 2 || !long.TryParse(value.AsSpan(0, value.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }

        long? ticks = value[^1] switch
        {
            'H' => amount * TimeSpan.TicksPerHour,
            'M' => amount * TimeSpan.TicksPerMinute,
            'S' => amount * TimeSpan.TicksPerSecond,
            'm' => amount * TimeSpan.TicksPerMillisecond,
            'u' => amount * TimeSpan.TicksPerMicrosecond,
            'n' => amount / 100,
            _ => null,
        };
        if (ticks is not { } t)
        {
            return false;
        }

        timeout = TimeSpan.FromTicks(t);
        return true;
    }

    /// <summary>Formats a timeout in the finest unit that keeps it within 8 digits (at least 1 ms when positive).</summary>
    public static string Format(TimeSpan timeout)
    {
        var milliseconds = Math.Max(1, (long)Math.Ceiling(timeout.TotalMilliseconds));
        if (milliseconds <= MaxValue)
        {
            return milliseconds.ToString(CultureInfo.InvariantCulture) + "m";
        }

        var seconds = (long)Math.Ceiling(timeout.TotalSeconds);
        return seconds <= MaxValue
            ? seconds.ToString(CultureInfo.InvariantCulture) + "S"
            : Math.Min((long)Math.Ceiling(timeout.TotalHours), MaxValue).ToString(CultureInfo.InvariantCulture) + "H";
    }

    /// <summary>Replaces the request's <c>grpc-timeout</c> header.</summary>
    public static void Write(HttpRequestMessage request, TimeSpan timeout)
    {
        request.Headers.Remove(Header);
        request.Headers.TryAddWithoutValidation(Header, Format(timeout));
    }
}
