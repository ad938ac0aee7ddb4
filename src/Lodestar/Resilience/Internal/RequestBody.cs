using System.Net.Http.Json;
using Lodestar.Internal;

namespace Lodestar.Resilience.Internal;

/// <summary>Decides whether a request's body can be sent more than once, buffering a small streamed body when a retry is possible.</summary>
internal static class RequestBody
{
    /// <summary>
    /// Makes the body replayable when a retry is possible: in-memory bodies (bytes, strings, form data), JSON content
    /// (<see cref="JsonContent"/> serialises its value again for each send) and multipart bodies made only of them
    /// already are; a streamed body with a known length within <paramref name="limit"/> is buffered; anything else is sent once.
    /// </summary>
    /// <returns>Whether the body can be sent again.</returns>
    public static async ValueTask<bool> PrepareAsync(HttpRequestMessage request, bool mayRetry, int limit, CancellationToken cancellationToken)
    {
        var content = request.Content;
        if (IsReplayable(content))
        {
            return true;
        }

        if (!mayRetry || content!.Headers.ContentLength is not { } length || length > limit)
        {
            return false;
        }

        await content.LoadIntoBufferAsync(limit, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Gets whether the body can be sent again as it is, without buffering.</summary>
    public static bool IsReplayable(HttpContent? content)
    {
        if (IsInMemory(content) || content is JsonContent || GrpcDotnetContent.IsSingleMessage(content))
        {
            return true;
        }

        if (content is MultipartContent multipart)
        {
            foreach (var part in multipart)
            {
                if (!IsReplayable(part))
                {
                    return false;
                }
            }

            return true;
        }

        return false;
    }

    /// <summary>Gets whether the body is held in memory (or absent), so concurrent attempts may send it at once.</summary>
    public static bool IsInMemory(HttpContent? content)
        => content is null or ByteArrayContent or ReadOnlyMemoryContent || content.Headers.ContentLength == 0;
}
