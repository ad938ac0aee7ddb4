using Grpc.Net.Client.Balancer;
using Lodestar.Internal;

namespace Lodestar.Grpc.Internal;

/// <summary>
/// Sits in a balanced channel's handler chain, below grpc-dotnet's balancer handler, and hands each response to the call
/// tracker its picker left on the request, so the tracker can report the call's <c>grpc-status</c>.
/// </summary>
/// <remarks>
/// A call whose connection could not be made never reached a server: rather than fail it, the handler asks the tracker
/// for another endpoint with a ready subchannel and sends it there (at most once per endpoint). That happens when an
/// instance stops before the registry says so and its subchannel still looks ready. grpc-dotnet's balancer handler
/// tells the transport which subchannel and address to connect through in two request options; the handler sets both
/// to the new pick, as the balancer handler does after a pick.
/// The same holds for a call the server refused by closing its connection gracefully (HTTP/2 <c>GOAWAY</c> with
/// <c>NO_ERROR</c>) after the call's stream was opened: the stream's id is above the last one the server said it
/// processes, which RFC 9113 (section 6.8) says is safe to send again (gRPC's "transparent retry", gRFC A6).
/// <see cref="SocketsHttpHandler"/> sends such a request again by itself only if it had not begun to send its body;
/// when it had, the handler does, for calls with a single request message (unary and server streaming), whose content
/// can be written again.
/// </remarks>
internal sealed class GrpcOutcomeHandler : DelegatingHandler
{
    public GrpcOutcomeHandler()
    {
    }

    public GrpcOutcomeHandler(HttpMessageHandler inner)
        : base(inner)
    {
    }

    // The option names grpc-dotnet's BalancerHttpHandler sets and its connect callback reads.
    private static readonly HttpRequestOptionsKey<Subchannel> s_subchannelKey = new("Subchannel");
    private static readonly HttpRequestOptionsKey<BalancerAddress> s_currentAddressKey = new("CurrentAddress");

    // A call without a tracker (not picked by a Lodestar picker) passes through without a state machine of its own.
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        => request.Options.TryGetValue(CallTracker.Key, out var tracker) && tracker.IsFor(request)
            ? SendTrackedAsync(request, tracker, cancellationToken)
            : base.SendAsync(request, cancellationToken);

    private async Task<HttpResponseMessage> SendTrackedAsync(HttpRequestMessage request, CallTracker tracker, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        while (true)
        {
            try
            {
                response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (HttpRequestException ex) when ((ex.HttpRequestError == HttpRequestError.ConnectionError || IsRefusedByGracefulClose(ex, request)) && !cancellationToken.IsCancellationRequested
                && request.RequestUri is { } uri && request.Options.TryGetValue(s_subchannelKey, out _)
                && tracker.TryReroute(ex, out var subchannel, out var address))
            {
                // Nothing was sent (the content is written only once a connection exists): send it again elsewhere.
                request.Options.Set(s_subchannelKey, subchannel);
                request.Options.Set(s_currentAddressKey, address);
                request.RequestUri = new UriBuilder(uri) { Host = address.EndPoint.Host, Port = address.EndPoint.Port }.Uri;
            }
        }

        tracker.Observe(response);
        return response;
    }

    /// <summary>
    /// Whether the server closed the connection gracefully (<c>GOAWAY</c>, <c>NO_ERROR</c>) before processing the
    /// call's stream, and the call's single request message can be written again.
    /// </summary>
    internal static bool IsRefusedByGracefulClose(HttpRequestException error, HttpRequestMessage request)
        => error.HttpRequestError == HttpRequestError.HttpProtocolError
           && error.InnerException is HttpProtocolException { ErrorCode: 0 }
           && GrpcDotnetContent.IsSingleMessage(request.Content);
}
