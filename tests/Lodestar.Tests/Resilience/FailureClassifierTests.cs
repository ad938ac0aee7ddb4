using System.Net.Sockets;
using Lodestar.Health.Internal;
using Lodestar.Resilience.Internal;

namespace Lodestar.Tests.Resilience;

public sealed class FailureClassifierTests
{
    public static TheoryData<Exception, string?, bool, string> Failures => new()
    {
        { new HttpRequestException(HttpRequestError.ConnectionError, "refused", new SocketException((int)SocketError.ConnectionRefused)), FailureClassifier.ConnectFailure, true, nameof(AttemptOutcome.ConnectFailure) },
        { new HttpRequestException(HttpRequestError.SecureConnectionError, "tls"), FailureClassifier.ConnectFailure, true, nameof(AttemptOutcome.ConnectFailure) },
        { new HttpRequestException("unreachable", new SocketException((int)SocketError.HostUnreachable)), FailureClassifier.ConnectFailure, true, nameof(AttemptOutcome.ConnectFailure) },
        { new TaskCanceledException("connect", new TimeoutException()), FailureClassifier.ConnectTimeout, true, nameof(AttemptOutcome.ConnectFailure) },
        { new HttpRequestException(HttpRequestError.HttpProtocolError, "refused", new HttpProtocolException(0x7, "REFUSED_STREAM", null)), FailureClassifier.RefusedStream, true, nameof(AttemptOutcome.GatewayFailure) },
        { new HttpRequestException(HttpRequestError.HttpProtocolError, "goaway", new HttpProtocolException(0x0, "NO_ERROR", null)), FailureClassifier.RefusedStream, true, nameof(AttemptOutcome.GatewayFailure) },
        { new HttpRequestException(HttpRequestError.HttpProtocolError, "goaway", new HttpProtocolException(0x2, "INTERNAL_ERROR", null)), FailureClassifier.ConnectionLost, false, nameof(AttemptOutcome.GatewayFailure) },
        { new HttpRequestException(HttpRequestError.ResponseEnded, "reset", new IOException("reset")), FailureClassifier.ConnectionLost, false, nameof(AttemptOutcome.GatewayFailure) },
        { new IOException("broken pipe"), FailureClassifier.ConnectionLost, false, nameof(AttemptOutcome.GatewayFailure) },
        { new HttpRequestException(HttpRequestError.UserAuthenticationError, "auth"), null, false, nameof(AttemptOutcome.GatewayFailure) },
        { new InvalidOperationException("bug"), null, false, nameof(AttemptOutcome.GatewayFailure) },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Classify_TransportFailure_ReasonSentAndOutcome(Exception error, string? reason, bool neverSent, string outcome)
    {
        var failure = FailureClassifier.Classify(error, perTryTimedOut: false, abandoned: false);

        Assert.Equal(reason, failure.Reason);
        Assert.Equal(neverSent, failure.NeverSent);
        Assert.Equal(outcome, failure.Outcome.ToString());
    }

    [Fact]
    public void Classify_PerTryTimeout_RetryableGatewayFailureThatMayHaveBeenSent()
    {
        var failure = FailureClassifier.Classify(new TaskCanceledException(), perTryTimedOut: true, abandoned: false);

        Assert.Equal(new AttemptFailure(FailureClassifier.PerTryTimeout, false, AttemptOutcome.GatewayFailure), failure);
    }

    [Fact]
    public void Classify_Abandoned_NoReasonAndNoVerdictOnTheEndpoint()
    {
        var failure = FailureClassifier.Classify(new HttpRequestException(HttpRequestError.ConnectionError, "refused"), perTryTimedOut: false, abandoned: true);

        Assert.Null(failure.Reason);
        Assert.Null(failure.Outcome);
    }

    [Theory]
    [InlineData(200, nameof(AttemptOutcome.Success))]
    [InlineData(404, nameof(AttemptOutcome.Success))]
    [InlineData(500, nameof(AttemptOutcome.ServerError))]
    [InlineData(502, nameof(AttemptOutcome.GatewayFailure))]
    [InlineData(503, nameof(AttemptOutcome.GatewayFailure))]
    [InlineData(504, nameof(AttemptOutcome.GatewayFailure))]
    [InlineData(507, nameof(AttemptOutcome.ServerError))]
    public void Classify_Status_OutcomeAsOutlierDetectionCountsIt(int status, string expected)
        => Assert.Equal(expected, FailureClassifier.Classify(status).ToString());

    [Theory]
    [InlineData("GET", true)]
    [InlineData("PUT", true)]
    [InlineData("DELETE", true)]
    [InlineData("POST", false)]
    [InlineData("PATCH", false)]
    public void IsIdempotent_Method_FollowsRfc9110(string method, bool expected)
        => Assert.Equal(expected, FailureClassifier.IsIdempotent(new HttpMethod(method)));
}
