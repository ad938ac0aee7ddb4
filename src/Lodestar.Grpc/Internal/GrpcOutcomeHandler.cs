namespace Lodestar.Grpc.Internal;

/// <summary>
/// Sits in a balanced channel's handler chain, below grpc-dotnet's balancer handler, and hands each response to the call
/// tracker its picker left on the request, so the tracker can report the call's <c>grpc-status</c>.
/// </summary>
internal sealed class GrpcOutcomeHandler : DelegatingHandler
{
    public GrpcOutcomeHandler()
    {
    }

    public GrpcOutcomeHandler(HttpMessageHandler inner)
        : base(inner)
    {
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (request.Options.TryGetValue(CallTracker.Key, out var tracker))
        {
            tracker.Observe(response);
        }

        return response;
    }
}
