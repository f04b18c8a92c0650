namespace OrleansLimiter.Grains.Storage;

/// <summary>What a batch was granted of each limit, and each limit's end (Unix ms) when it was: a window's, so that it is given back only into that window.</summary>
/// <param name="Amounts">Per limit, what the batch was granted of it.</param>
/// <param name="EndsMs">Per limit, its end when the batch was granted (a bucket's is not compared).</param>
public sealed record BatchGrant(long[] Amounts, long[] EndsMs);
