using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.LoadBalancing.Internal;
using Lodestar.Resilience.Hedging.Internal;
using Lodestar.Resilience.Internal;
using Microsoft.Extensions.Time.Testing;
using static Lodestar.Tests.LoadBalancing.BalancerFixture;

namespace Lodestar.Tests.Resilience;

public sealed class HedgeRoundTests
{
    private static readonly EndpointState s_endpoint = Create(new RoundRobinPolicy(RandomSource.Shared), [Endpoint(0)]).Endpoints[0];

    [Fact]
    public async Task WaitAsync_FirstCompletesBeforeTheDelay_TrueWithTheFirstResult()
    {
        // Arrange
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var first = new TaskCompletionSource<AttemptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act
        var wait = round.WaitAsync(new ValueTask<AttemptResult>(first.Task), TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(99));
        var endedEarly = wait.IsCompleted;
        first.SetResult(AttemptResult.FromResponse(s_endpoint, response));
        var firstCompleted = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(endedEarly);
        Assert.True(firstCompleted);
        Assert.Same(response, round.FirstResult.Response);
    }

    [Fact]
    public async Task WaitAsync_DelayPassesFirst_FalseAndTheFirstAttemptArrivesThroughItsTask()
    {
        // Arrange
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var first = new TaskCompletionSource<AttemptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);

        // Act
        var wait = round.WaitAsync(new ValueTask<AttemptResult>(first.Task), TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(100));
        var firstCompleted = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        var firstTask = round.FirstAsTask();
        var pendingBeforeTheAnswer = !firstTask.IsCompleted;
        first.SetResult(AttemptResult.FromResponse(s_endpoint, response));
        var result = await firstTask.WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(firstCompleted);
        Assert.True(pendingBeforeTheAnswer);
        Assert.Same(response, result.Response);
    }

    [Fact]
    public async Task WaitAsync_SubMillisecondDelay_EndsAtTheNextWholeMillisecond()
    {
        // Arrange: 300 µs, which a timer would round down to firing at once.
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var first = new TaskCompletionSource<AttemptResult>();

        // Act
        var wait = round.WaitAsync(new ValueTask<AttemptResult>(first.Task), TimeSpan.FromTicks(3_000));
        time.Advance(TimeSpan.FromTicks(2_999));
        var endedEarly = wait.IsCompleted;
        time.Advance(TimeSpan.FromTicks(10_000 - 2_999));
        var firstCompleted = await wait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(endedEarly);
        Assert.False(firstCompleted);
    }

    [Fact]
    public async Task Reset_AfterAWin_NextWaitEndsAfterItsOwnDelayNotTheEarlierOne()
    {
        // Arrange: a first request answered 60 ms into a 100 ms delay; the round then serves a second request.
        var time = new FakeTimeProvider();
        using var round = new HedgeRound(time);
        round.Start(CancellationToken.None);
        var early = new TaskCompletionSource<AttemptResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var response = new HttpResponseMessage(System.Net.HttpStatusCode.OK);
        var firstWait = round.WaitAsync(new ValueTask<AttemptResult>(early.Task), TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(60));
        early.SetResult(AttemptResult.FromResponse(s_endpoint, response));
        Assert.True(await firstWait.AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        round.Reset();

        // Act
        round.Start(CancellationToken.None);
        var slow = new TaskCompletionSource<AttemptResult>();
        var secondWait = round.WaitAsync(new ValueTask<AttemptResult>(slow.Task), TimeSpan.FromMilliseconds(100));
        time.Advance(TimeSpan.FromMilliseconds(40));
        var endedAtTheEarlierDue = secondWait.IsCompleted;
        time.Advance(TimeSpan.FromMilliseconds(59));
        var endedEarly = secondWait.IsCompleted;
        time.Advance(TimeSpan.FromMilliseconds(1));
        var firstCompleted = await secondWait.AsTask().WaitAsync(TimeSpan.FromSeconds(5));

        // Assert
        Assert.False(endedAtTheEarlierDue);
        Assert.False(endedEarly);
        Assert.False(firstCompleted);
    }

    [Fact]
    public void Start_CallerCancels_AttemptsTokenCancelled_AndResetGivesTheNextRequestAFreshToken()
    {
        // Arrange
        using var round = new HedgeRound(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();
        round.Start(caller.Token);

        // Act
        caller.Cancel();
        var cancelled = round.Token.IsCancellationRequested;
        round.Reset();
        round.Start(CancellationToken.None);

        // Assert
        Assert.True(cancelled);
        Assert.False(round.Token.IsCancellationRequested);
    }

    [Fact]
    public void Reset_CallerCancelsAfterTheRequest_NextRequestsTokenUntouched()
    {
        // Arrange: the caller's source outlives the request it was linked for.
        using var round = new HedgeRound(new FakeTimeProvider());
        using var caller = new CancellationTokenSource();
        round.Start(caller.Token);
        round.Reset();
        round.Start(CancellationToken.None);

        // Act
        caller.Cancel();

        // Assert
        Assert.False(round.Token.IsCancellationRequested);
    }
}
